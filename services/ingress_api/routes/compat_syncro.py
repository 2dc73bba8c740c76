"""The Syncro CRM API's WhatsApp part under `/api/v1`: numbers and templates by integer id, and
sends to a lead (a contact), mapped onto the gateway's own listings and accept."""

from typing import Any

from aiohttp import web

from ingress_api.accept.accepting import MessageToAccept, accept_one, content_of
from ingress_api.auth import Caller, authenticate
from ingress_api.contact_book import contact_filter
from ingress_api.countries import send_context
from ingress_api.error_shapes import ErrorShape
from ingress_api.numbered_ids import instance_numbers, numbers_of, ref_of
from ingress_api.registry import API
from ingress_api.requests import channel_instances, pick_instance, read_json, read_query, validate
from ingress_api.schemas.messages import TextMessage
from ingress_api.schemas.syncro import (
    SyncroError,
    SyncroInstances,
    SyncroSendAnswer,
    SyncroTemplateQuery,
    SyncroTemplates,
    SyncroTemplateSend,
    SyncroTextSend,
)
from ingress_api.schemas.templates import TemplateMessage
from ingress_api.template_sends import send_template_message
from ingress_api.whatsapp_numbers import whatsapp_number
from lanegate.errors import ApiError, InvalidInput, NotFound
from lanegate.phones import written_digits
from lanegate.service import STORE
from lanegate.store import Document, Store
from lanegate.templates import listing_filter, view

TAG = "Syncro compatibility"
SEND_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)


def syncro_error(error: ApiError) -> dict[str, Any]:
    """An error as Syncro's answers are shaped: `success: false`, with the gateway's message,
    code and, for a bad request, each bad field."""
    body: dict[str, Any] = {"success": False, "error": error.message, "code": error.code}
    if error.issues:
        body["issues"] = error.issues
    return body


SYNCRO_ERRORS = ErrorShape(SyncroError, syncro_error)


def plus_digits(number: str | None) -> str | None:
    """A stored phone number (digits, or as the provider wrote it) as `+` and its digits."""
    digits = written_digits(number) if number else None
    return f"+{digits}" if digits else None


@API.get(
    "/api/v1/whatsapp/instances",
    summary="Your WhatsApp numbers with integer ids and what each supports (Syncro)",
    tag=TAG,
    response=SyncroInstances,
    errors=(401, 403, 429),
    scope="instances:read",
    error_shape=SYNCRO_ERRORS,
)
async def list_instances(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    found = store.instances.find(channel_instances(caller, "whatsapp")).sort(
        [("createdAt", 1), ("_id", 1)]
    )
    instances = await found.to_list(None)
    numbers = await numbers_of(store, caller.tenant_id, "instance", [i["_id"] for i in instances])
    data = [
        whatsapp_number(i)
        | {"id": numbers[i["_id"]], "phone_number": plus_digits(i.get("phoneNumber"))}
        for i in instances
    ]
    return web.json_response({"success": True, "data": data})


@API.get(
    "/api/v1/whatsapp/templates",
    summary="Synced official (HSM) templates by number, status and language (Syncro)",
    tag=TAG,
    query=SyncroTemplateQuery,
    response=SyncroTemplates,
    errors=(400, 401, 403, 429),
    scope="templates:read",
    error_shape=SYNCRO_ERRORS,
)
async def list_templates(request: web.Request) -> web.Response:
    """Templates Meta still lists (deleted ones with `status=DELETED`); an `instance_id` that
    names no number lists none."""
    caller = await authenticate(request)
    query = read_query(request, SyncroTemplateQuery)
    store = request.app[STORE]
    instance_name = None
    if query.instance_id is not None:
        instance_name = await ref_of(store, caller.tenant_id, "instance", query.instance_id)
        if instance_name is None:
            return web.json_response({"success": True, "data": []})
    where = listing_filter(caller.tenant_id, instance_name, query.status, query.language)
    index = "tenant_instance_name_id" if instance_name is not None else "tenant_name_id"
    found = store.templates.find(where).sort([("name", 1), ("_id", 1)]).hint(index)
    templates = await found.to_list(None)
    numbers = await numbers_of(store, caller.tenant_id, "template", [t["_id"] for t in templates])
    instances = await instance_numbers(store, caller.tenant_id)
    data = [_template(t, numbers[t["_id"]], instances[t["instanceName"]]) for t in templates]
    return web.json_response({"success": True, "data": data})


def _template(template: Document, number: int, instance_number: int) -> dict[str, Any]:
    shown = view(template)
    return {
        "id": number,
        "name": shown["name"],
        "language": shown["language"],
        "category": shown["category"],
        "status": shown["status"],
        "whatsapp_instance_id": instance_number,
        "variables": shown["variables"],
        "components": shown["components"],
        "quality_rating": shown["quality_rating"],
    }


async def _lead(store: Store, caller: Caller, lead_id: str) -> Document:
    """The contact a lead id names (its id, or its number); 404 when there is none."""
    contact = await store.contacts.find_one(contact_filter(caller, lead_id))
    if contact is None:
        raise NotFound(f"Lead {lead_id} not found")
    return contact


async def _numbered_instance(store: Store, caller: Caller, number: int | None) -> str:
    """The instance an `instance_id` names, or the primary open one when it is omitted."""
    if number is None:
        return await pick_instance(
            store,
            channel_instances(caller, "whatsapp"),
            "You have no WhatsApp number",
        )
    name = await ref_of(store, caller.tenant_id, "instance", number)
    if name is None:
        raise NotFound(f"No WhatsApp number with id {number}: list /whatsapp/instances")
    return name


# Where a native send field sits in Syncro's body, so a refusal names the field sent.
SENT_AS = {"instanceName": "instance_id", "templateId": "template_id", "text": "message"}


def _as_sent(error: InvalidInput) -> InvalidInput:
    return InvalidInput(
        [
            ([SENT_AS.get(str(p), p) for p in issue["path"]], issue["message"])
            for issue in error.issues
        ]
    )


async def _sent(
    request: web.Request, caller: Caller, lead: Document, name: str, answer: dict[str, Any]
) -> dict[str, Any]:
    number = (await instance_numbers(request.app[STORE], caller.tenant_id))[name]
    return {
        "success": True,
        "data": {
            "message_id": answer["id"],
            "status": answer["status"],
            "lead_id": lead["_id"],
            "instance_id": number,
            "to": plus_digits(lead["identifier"]),
        },
    }


@API.post(
    "/api/v1/leads/{id}/send-whatsapp-template",
    summary="Send an approved template to a lead, variables in {{1}}, {{2}} order (Syncro)",
    tag=TAG,
    body=SyncroTemplateSend,
    response=SyncroSendAnswer,
    status=202,
    errors=SEND_ERRORS,
    scope="messages:write",
    error_shape=SYNCRO_ERRORS,
)
async def send_template(request: web.Request) -> web.Response:
    """Without `instance_id` the template's own number sends it."""
    caller = await authenticate(request)
    body = await read_json(request, SyncroTemplateSend)
    store = request.app[STORE]
    lead = await _lead(store, caller, request.match_info["id"])
    template_id = await ref_of(store, caller.tenant_id, "template", body.template_id)
    template = (
        await store.templates.find_one({"_id": template_id, "tenantId": caller.tenant_id})
        if template_id is not None
        else None
    )
    if template is None:
        raise NotFound(f"No template with id {body.template_id}: list /whatsapp/templates")
    name = (
        template["instanceName"]
        if body.instance_id is None
        else await _numbered_instance(store, caller, body.instance_id)
    )
    fields = {
        "instanceName": name,
        "to": lead["identifier"],
        "templateId": template["_id"],
        "variables": body.variables,
    }
    try:
        native = validate(TemplateMessage, fields, await send_context(request, caller, name))
        answer, status = await send_template_message(request, caller, native)
    except InvalidInput as e:
        raise _as_sent(e) from e
    return web.json_response(await _sent(request, caller, lead, name, answer), status=status)


@API.post(
    "/api/v1/leads/{id}/send-whatsapp",
    summary="Send a text message to a lead (Syncro)",
    tag=TAG,
    body=SyncroTextSend,
    response=SyncroSendAnswer,
    status=202,
    errors=SEND_ERRORS,
    scope="messages:write",
    error_shape=SYNCRO_ERRORS,
)
async def send_text(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, SyncroTextSend)
    store = request.app[STORE]
    lead = await _lead(store, caller, request.match_info["id"])
    name = await _numbered_instance(store, caller, body.instance_id)
    fields = {"instanceName": name, "to": lead["identifier"], "text": body.message}
    try:
        native = validate(TextMessage, fields, await send_context(request, caller, name))
    except InvalidInput as e:
        raise _as_sent(e) from e
    answer, status = await accept_one(
        request, caller, MessageToAccept(native, "text", content_of("text", native))
    )
    return web.json_response(await _sent(request, caller, lead, name, answer), status=status)
