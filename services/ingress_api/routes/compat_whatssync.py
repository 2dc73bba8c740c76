"""The WhatsSync Chat API under `/api/v1`: its send body, contacts and conversations, mapped
onto the gateway's own accept and contact reads, and its errors in its own body."""

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ingress_api.accept.accepting import MessageToAccept, accept_one, content_of
from ingress_api.auth import Caller, authenticate
from ingress_api.contact_book import (
    contact_filter,
    contacts_page,
    conversation_page,
    phone_in_path,
)
from ingress_api.countries import COUNTRY_NOT_KNOWN_YET, send_context
from ingress_api.error_shapes import ErrorShape
from ingress_api.registry import API
from ingress_api.requests import (
    channel_instances,
    own_instance,
    pick_instance,
    read_object,
    read_query,
    validate,
)
from ingress_api.schemas.messages import (
    DocumentMessage,
    ImageMessage,
    LocationMessage,
    SendCommon,
    TextMessage,
)
from ingress_api.schemas.templates import TemplateMessage
from ingress_api.schemas.whatssync import (
    BodyComponent,
    CurrencyParameter,
    DateTimeParameter,
    SyncContactDetail,
    SyncContacts,
    SyncError,
    SyncMessages,
    SyncMessagesQuery,
    SyncPageQuery,
    SyncSend,
    SyncSent,
    SyncTemplate,
    TextParameter,
)
from ingress_api.template_sends import accept_template_send, require_waba, sendable_template
from lanegate.errors import ApiError, InvalidInput, NotFound
from lanegate.phones import ISSUE_CODE
from lanegate.service import STORE
from lanegate.store import Document
from lanegate.templates import TemplateMismatch, check_components
from lanegate.timestamps import iso_utc

TAG = "WhatsSync compatibility"
ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)


def whatssync_error(error: ApiError) -> dict[str, Any]:
    """An error in WhatsSync's body: `{"error": {"code", "message", "status"}}`, with each bad
    field in `details`."""
    code, message = error.code.lower(), error.message
    if any(issue.get("code") == ISSUE_CODE for issue in error.issues):
        code, message = ISSUE_CODE, "The phone number provided is not valid"
    elif error.issues:
        message = "; ".join(
            f"{'.'.join(str(p) for p in issue['path']) or 'body'}: {issue['message']}"
            for issue in error.issues
        )
    body: dict[str, Any] = {"code": code, "message": message, "status": error.status}
    if error.issues:
        body["details"] = error.issues
    return {"error": body}


WHATSSYNC_ERRORS = ErrorShape(SyncError, whatssync_error)


def plus(number: str | None) -> str | None:
    """A stored number (E.164 digits) as WhatsSync writes it, with `+`."""
    return None if number is None else f"+{number}"


# Where each native field sits in the WhatsSync body, so a refusal names the field sent.
SENT_AS: dict[str, dict[str, list[str | int]]] = {
    "image": {"imageUrl": ["image", "url"], "caption": ["image", "caption"]},
    "document": {
        "documentUrl": ["document", "url"],
        "fileName": ["document", "filename"],
        "caption": ["document", "caption"],
    },
    "location": {f: ["location", f] for f in ("latitude", "longitude", "name", "address")},
}

NATIVE: dict[str, type[SendCommon]] = {
    "text": TextMessage,
    "image": ImageMessage,
    "document": DocumentMessage,
    "location": LocationMessage,
}


def native_fields(body: SyncSend) -> dict[str, Any]:
    """The native send body's content fields for a WhatsSync send that is not a template."""
    if body.image is not None:
        return {"imageUrl": str(body.image.url), "caption": body.image.caption}
    if body.document is not None:
        return {
            "documentUrl": str(body.document.url),
            "fileName": body.document.filename,
            "caption": body.document.caption,
        }
    if body.location is not None:
        return body.location.model_dump(exclude_none=True)
    return {"text": body.text}


def as_native[M: BaseModel](
    model: type[M], kind: str, fields: dict[str, Any], context: dict[str, Any]
) -> M:
    """`fields` as the native `model`; a 400 names the fields as WhatsSync sent them."""
    try:
        return model.model_validate(
            {k: v for k, v in fields.items() if v is not None}, context=context
        )
    except ValidationError as e:
        moved = SENT_AS.get(kind, {})
        raise InvalidInput(
            [
                (moved.get(str(err["loc"][0]), list(err["loc"])) if err["loc"] else [], err["msg"])
                for err in e.errors()
            ]
        ) from e


@API.post(
    "/api/v1/messages",
    summary="Send a text, image, document, location or template message (WhatsSync)",
    tag=TAG,
    body=SyncSend,
    response=SyncSent,
    status=202,
    errors=ERRORS,
    scope="messages:write",
    error_shape=WHATSSYNC_ERRORS,
)
async def send_message(request: web.Request) -> web.Response:
    """Queue the message on `instanceName`, else on the tenant's primary open instance."""
    caller = await authenticate(request)
    body = validate(SyncSend, await read_object(request), COUNTRY_NOT_KNOWN_YET)
    store = request.app[STORE]
    name = body.instanceName or await pick_instance(
        store,
        channel_instances(caller, "whatsapp"),
        "You have no WhatsApp instance",
    )
    context = await send_context(request, caller, name)
    common = {"instanceName": name, "to": body.to}
    if body.template is not None:
        template = as_native(
            TemplateMessage, "template", common | template_fields(body.template), context
        )
        answer, status = await _send_template(request, caller, template, body.template)
        to = template.to
    else:
        native = as_native(NATIVE[body.type], body.type, common | native_fields(body), context)
        item = MessageToAccept(native, body.type, content_of(body.type, native))
        answer, status = await accept_one(request, caller, item)
        to = native.to
    shown = {
        "id": answer["id"],
        "status": answer["status"],
        "to": plus(to),
        "type": body.type,
        "instanceName": name,
        "timestamp": answer["queuedAt"],
    }
    return web.json_response(shown, status=status)


def template_fields(template: SyncTemplate) -> dict[str, Any]:
    """The native template send's fields; the body parameters' texts (or fallback values) are
    its `variables`, which the message read-back shows."""
    return {
        "name": template.name,
        "language": template.language.code,
        "variables": [
            parameter.text if isinstance(parameter, TextParameter) else fallback(parameter)
            for component in template.components
            if isinstance(component, BodyComponent)
            for parameter in component.parameters
        ],
    }


def fallback(parameter: CurrencyParameter | DateTimeParameter) -> str:
    if isinstance(parameter, CurrencyParameter):
        return parameter.currency.fallback_value
    return parameter.date_time.fallback_value


async def _send_template(
    request: web.Request, caller: Caller, native: TemplateMessage, sent: SyncTemplate
) -> tuple[dict[str, Any], int]:
    """Check the components against the synced template, then queue them to be passed to the
    Cloud API as given; 422 on an instance whose provider has no templates."""
    store = request.app[STORE]
    instance = await own_instance(store, caller, native.instanceName)
    require_waba(instance)
    template = await sendable_template(store, instance, native)
    components = [c.model_dump(exclude_none=True) for c in sent.components]
    try:
        check_components(template, components)
    except TemplateMismatch as e:
        raise InvalidInput([(["template", *path], text) for path, text in e.issues]) from e
    return await accept_template_send(request, caller, native, template, components)


def contact_view(contact: Document) -> dict[str, Any]:
    return {
        "id": contact["_id"],
        "phone": plus(contact["identifier"]),
        "name": contact.get("name"),
        "lastMessageAt": iso_utc(contact.get("lastMessageAt")),
    }


@API.get(
    "/api/v1/contacts",
    summary="Your contacts by number, a page at a time (WhatsSync)",
    tag=TAG,
    query=SyncPageQuery,
    response=SyncContacts,
    errors=(400, 401, 403, 429),
    scope="contacts:read",
    error_shape=WHATSSYNC_ERRORS,
)
async def list_contacts(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, SyncPageQuery)
    page, following = await contacts_page(
        request.app[STORE], {"tenantId": caller.tenant_id}, query.cursor, query.limit
    )
    return web.json_response(
        {"contacts": [contact_view(c) for c in page], "pagination": {"next": following}}
    )


@API.get(
    "/api/v1/contacts/{phone}",
    summary="One contact by phone number (or id), with its tags (WhatsSync)",
    tag=TAG,
    response=SyncContactDetail,
    errors=(400, 401, 403, 404, 429),
    scope="contacts:read",
    error_shape=WHATSSYNC_ERRORS,
)
async def get_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    found = contact_filter(caller, request.match_info["phone"], field="phone")
    contact = await request.app[STORE].contacts.find_one(found)
    if contact is None:
        raise NotFound("Contact not found")
    return web.json_response(
        contact_view(contact) | {"profileImage": None, "tags": contact.get("tags", [])}
    )


@API.get(
    "/api/v1/contacts/{phone}/messages",
    summary="The conversation with a number, both directions, newest first (WhatsSync)",
    tag=TAG,
    query=SyncMessagesQuery,
    response=SyncMessages,
    errors=(400, 401, 403, 429),
    scope="contacts:read",
    error_shape=WHATSSYNC_ERRORS,
)
async def contact_messages(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, SyncMessagesQuery)
    messages, following = await conversation_page(
        request.app[STORE],
        caller,
        phone_in_path(caller, request.match_info["phone"]),
        instance_name=query.instanceName,
        cursor=query.cursor,
        limit=query.limit,
    )
    shown = [
        {
            "id": m["id"],
            "from": plus(m["from"]),
            "to": plus(m["to"]),
            "type": m["type"],
            "text": m["text"],
            "timestamp": m["timestamp"],
            "status": m["status"],
            "direction": m["direction"],
        }
        for m in messages
    ]
    return web.json_response({"messages": shown, "pagination": {"next": following}})
