"""Templates: reading synced ones, syncing on demand (asked of template-sync), and template
sends, checked against the stored template before anything is queued."""

import base64
import json

from aiohttp import web

from ingress_api.auth import authenticate, require_own_instance
from ingress_api.countries import send_context
from ingress_api.registry import API
from ingress_api.requests import (
    NAME_ISSUE,
    REPEATED_SEND_STATUS,
    SEND_ERRORS,
    channel_instances,
    own_instance,
    read_json,
    read_object,
    read_query,
    validate,
)
from ingress_api.rpc import ask_template_sync
from ingress_api.schemas.base import parse_instance_name
from ingress_api.schemas.messages import Accepted
from ingress_api.schemas.templates import (
    TemplateList,
    TemplateMessage,
    TemplateOne,
    TemplateQuery,
    TemplatesSynced,
    TemplateSyncRequest,
    WhatsAppInstances,
)
from ingress_api.template_sends import require_waba, send_template_message
from ingress_api.whatsapp_numbers import whatsapp_number
from lanegate.errors import InvalidInput, NotFound
from lanegate.service import STORE
from lanegate.store import Document
from lanegate.templates import listing_filter, view


@API.get(
    "/whatsapp/instances",
    summary="Your WhatsApp numbers, with what each provider supports",
    tag="templates",
    response=WhatsAppInstances,
    errors=(401,),
    scope="instances:read",
)
async def whatsapp_instances(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    whatsapp = channel_instances(caller, "whatsapp")
    found = request.app[STORE].instances.find(whatsapp).sort("_id", 1)
    data = [whatsapp_number(i) for i in await found.to_list(None)]
    return web.json_response({"success": True, "data": data})


@API.get(
    "/whatsapp/templates",
    summary="Synced message templates, by instance, status and language",
    tag="templates",
    query=TemplateQuery,
    response=TemplateList,
    errors=(400, 401, 403),
    scope="templates:read",
)
async def list_templates(request: web.Request) -> web.Response:
    """Templates Meta still lists; deleted ones only when asked for with `status=DELETED`."""
    caller = await authenticate(request)
    query = read_query(request, TemplateQuery)
    if query.instance_id is not None:
        parts = parse_instance_name(query.instance_id)
        if parts is None:
            raise InvalidInput([(["instance_id"], NAME_ISSUE)])
        require_own_instance(caller, parts[0])
    where = listing_filter(caller.tenant_id, query.instance_id, query.status, query.language)
    if query.cursor is not None:
        name, template = _after_template(query.cursor)
        where["$or"] = [{"name": {"$gt": name}}, {"name": name, "_id": {"$gt": template}}]
    index = "tenant_instance_name_id" if "instanceName" in where else "tenant_name_id"
    found = (
        request.app[STORE]
        .templates.find(where)
        .sort([("name", 1), ("_id", 1)])
        .limit(query.limit + 1)
        .hint(index)
    )
    page = await found.to_list(None)
    last = page[query.limit - 1] if len(page) > query.limit else None
    return web.json_response(
        {
            "success": True,
            "data": [view(t) for t in page[: query.limit]],
            "pagination": {"next": _template_cursor(last) if last is not None else None},
        }
    )


def _template_cursor(template: Document) -> str:
    return base64.urlsafe_b64encode(
        json.dumps([template["name"], template["_id"]]).encode()
    ).decode()


def _after_template(cursor: str) -> tuple[str, str]:
    """The name and id a templates cursor ends at."""
    try:
        name, template = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as e:
        raise InvalidInput([(["cursor"], "Not a cursor this API gave out")]) from e
    if not isinstance(name, str) or not isinstance(template, str):
        raise InvalidInput([(["cursor"], "Not a cursor this API gave out")])
    return name, template


@API.get(
    "/templates/{id}",
    summary="One synced template, its components and variables",
    tag="templates",
    response=TemplateOne,
    errors=(401, 404),
    scope="templates:read",
)
async def get_template(request: web.Request) -> web.Response:
    """One of the caller's templates; another tenant's id reads as not found."""
    caller = await authenticate(request)
    template = await request.app[STORE].templates.find_one(
        {"_id": request.match_info["id"], "tenantId": caller.tenant_id}
    )
    if template is None:
        raise NotFound("Template not found")
    return web.json_response({"success": True, "data": view(template)})


@API.post(
    "/templates/sync",
    summary="Pull the instance's templates from its WhatsApp Business Account now",
    tag="templates",
    body=TemplateSyncRequest,
    response=TemplatesSynced,
    errors=(400, 401, 403, 404, 422, 429, 500, 503, 504),
    scope="templates:sync",
)
async def sync_templates(request: web.Request) -> web.Response:
    """Ask template-sync to sync; 422 without a WABA or with a refused base URL, 500 when Meta
    fails, 429 when throttled."""
    caller = await authenticate(request)
    body = await read_json(request, TemplateSyncRequest)
    instance = await own_instance(request.app[STORE], caller, body.instanceName)
    require_waba(instance)
    answer = await ask_template_sync(request, instance)
    return web.json_response(
        {"synced_count": answer["synced_count"], "templates": answer["templates"]}
    )


@API.post(
    "/message/template",
    summary="Queue an approved template message (allowed outside the 24-hour window)",
    tag="messages",
    body=TemplateMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_template(request: web.Request) -> web.Response:
    """Check the template and its variables, build Meta's components, then queue the message."""
    caller = await authenticate(request)
    data = await read_object(request)
    context = await send_context(request, caller, data.get("instanceName"))
    body = validate(TemplateMessage, data, context)
    answer, status = await send_template_message(request, caller, body)
    return web.json_response(answer, status=status)
