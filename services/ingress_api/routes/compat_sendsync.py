"""The SendSync client API under `/api`: connectors, WhatsApp sessions, the queue and contacts,
each body checked in its own shape, then served by the native accept, listing, session and
contact code."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import BodyPartReader, web

from ingress_api.accept.accepting import Issues, MessageToAccept, accept_many, accept_one
from ingress_api.accept.lookups import LOOKUPS
from ingress_api.accept.uploads import discard_files, read_multipart
from ingress_api.accounts.login import log_in, sign_in
from ingress_api.auth import Caller, authenticate
from ingress_api.contact_book import (
    contact_view,
    delete_one_contact,
    set_contact_active,
    upsert_contact,
)
from ingress_api.countries import countries, send_context
from ingress_api.registry import API
from ingress_api.requests import (
    MEDIA_URLS,
    NEWEST_FIRST,
    check_paging,
    listing_plan,
    own_instance,
    page_meta,
    pause_view,
    read_json,
    read_object,
    read_query,
    refuse_private_targets,
    validate,
)
from ingress_api.rpc import SESSION_ERRORS, SessionUnsupported, ask
from ingress_api.schemas.accounts import Tokens
from ingress_api.schemas.base import parse_instance_name
from ingress_api.schemas.compat_sendsync import (
    QUEUE_STATUS,
    BulkQueued,
    Connector,
    ContactSave,
    ContactsQuery,
    ImportPreview,
    Login,
    QueueBulk,
    QueuedMessage,
    QueueList,
    QueueQuery,
    QueueSend,
    WhatsAppConnection,
    WhatsAppStatus,
)
from ingress_api.schemas.contacts import ContactDeleted, ContactStatus, ContactView
from ingress_api.schemas.message_reads import MessageQuery
from ingress_api.schemas.messages import AttachmentMessage, SendCommon, TextMessage
from ingress_api.spreadsheets import XLSX_MEDIA, read_rows, template
from lanegate.conversations import readable_text
from lanegate.errors import (
    ApiError,
    InvalidInput,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from lanegate.phones import ISSUE_CODE, InvalidPhoneNumber, normalized
from lanegate.providers.capabilities import channel_of
from lanegate.service import SETTINGS, STORE
from lanegate.store import Document
from lanegate.timestamps import iso_utc

TAG = "SendSync compatibility"

IDEMPOTENCY_KEY = "Idempotency-Key"

# Native field names as a SendSync client knows them, for the paths of error `issues`.
CLIENT_NAMES = {
    "instanceName": "connectorId",
    "text": "message",
    "caption": "message",
    "externalId": IDEMPOTENCY_KEY,
}

# Room left in an Idempotency-Key for the `:<index>` a bulk item's key gets.
MAX_IDEMPOTENCY_KEY = 190


@contextmanager
def client_names() -> Iterator[None]:
    """Errors raised inside name the fields as the SendSync client sent them."""
    try:
        yield
    except ApiError as e:
        for issue in e.issues:
            issue["path"] = [
                CLIENT_NAMES.get(p, p) if isinstance(p, str) else p for p in issue["path"]
            ]
        raise


@API.post(
    "/api/auth/login",
    summary="Log in with e-mail and password: an access token for Authorization: Bearer",
    tag=TAG,
    body=Login,
    response=Tokens,
    errors=(400, 401, 429),
    auth="none",
)
async def sendsync_login(request: web.Request) -> web.Response:
    """The gateway's own sign-in: its answer holds SendSync's `access_token` and `user`."""
    body = await read_json(request, Login)
    return web.json_response(await log_in(sign_in(request), body.email, body.password))


def connector(instance: Document) -> dict[str, Any]:
    """An instance as a SendSync connector."""
    parts = parse_instance_name(instance["_id"])
    if pause_view(instance) is not None:
        status = "PAUSED"
    else:
        status = "ACTIVE" if instance.get("state") == "open" else "DISCONNECTED"
    return {
        "id": instance["_id"],
        "name": instance.get("displayName") or (parts[2] if parts else instance["_id"]),
        "type": "EMAIL" if channel_of(instance["provider"]) == "email" else "WHATSAPP",
        "status": status,
        "companyId": instance["tenantId"],
    }


@API.get(
    "/api/connectors",
    summary="Your instances as connectors (id = instance name)",
    tag=TAG,
    response=list[Connector],
    errors=(401,),
    scope="instances:read",
)
async def sendsync_connectors(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    found = request.app[STORE].instances.find({"tenantId": caller.tenant_id}).sort("_id", 1)
    return web.json_response([connector(i) for i in await found.to_list(None)])


async def _whatsapp_connector(request: web.Request) -> Document:
    """The caller's WhatsApp instance the path names; 422 for an e-mail connector."""
    caller = await authenticate(request)
    with client_names():
        instance = await own_instance(request.app[STORE], caller, request.match_info["connectorId"])
    if channel_of(instance["provider"]) != "whatsapp":
        raise Unprocessable("This connector is not a WhatsApp connector")
    return instance


@API.post(
    "/api/whatsapp/connect/{connectorId}",
    summary="Start the WhatsApp session; the QR code to scan while it is not connected",
    tag=TAG,
    response=WhatsAppConnection,
    errors=SESSION_ERRORS,
    scope="instances:write",
)
async def sendsync_connect(request: web.Request) -> web.Response:
    instance = await _whatsapp_connector(request)
    try:
        started = await ask(request, instance, "start")
    finally:
        request.app[LOOKUPS].forget_instance(instance["tenantId"], instance["_id"])
    if started["state"] == "open":
        return web.json_response({"status": "CONNECTED"})
    try:
        qr = await ask(request, instance, "qr")
    except SessionUnsupported:  # a provider linked without a QR code (Cloud API): nothing to scan
        return web.json_response({"status": "DISCONNECTED"})
    return web.json_response({"status": "QR_CODE", "qrCode": qr["qrcode"]})


@API.get(
    "/api/whatsapp/status/{connectorId}",
    summary="The WhatsApp session's state now, with the phone number once connected",
    tag=TAG,
    response=WhatsAppStatus,
    errors=SESSION_ERRORS,
    scope="instances:read",
)
async def sendsync_whatsapp_status(request: web.Request) -> web.Response:
    instance = await _whatsapp_connector(request)
    session = await ask(request, instance, "status")
    state = session["state"]
    if state == "open":
        return web.json_response({"status": "CONNECTED", "phone": session.get("phoneNumber")})
    return web.json_response({"status": "QR_CODE" if state == "connecting" else "DISCONNECTED"})


@API.post(
    "/api/whatsapp/disconnect/{connectorId}",
    summary="Log the WhatsApp session out (a new QR scan is needed afterwards)",
    tag=TAG,
    response=WhatsAppStatus,
    errors=SESSION_ERRORS,
    scope="instances:write",
)
async def sendsync_disconnect(request: web.Request) -> web.Response:
    instance = await _whatsapp_connector(request)
    try:
        await ask(request, instance, "logout")
    finally:
        request.app[LOOKUPS].forget_instance(instance["tenantId"], instance["_id"])
    return web.json_response({"status": "DISCONNECTED"})


def idempotency_key(request: web.Request) -> str | None:
    """The `Idempotency-Key` header; 400 when empty or too long."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        issue = f"Must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        raise InvalidInput([([IDEMPOTENCY_KEY], issue)])
    return key


def message_to_accept(
    fields: dict[str, Any], files: list[dict[str, Any]], key: str | None, context: dict[str, Any]
) -> MessageToAccept:
    """A SendSync send as the native message it is: text, or an attachment when it has files
    or an `attachmentUrl`; `externalId` becomes its plain reference, `key` its `externalId`."""
    body = validate(QueueSend, fields)
    if body.forceDirect and body.scheduledAt is not None:
        raise InvalidInput([(["scheduledAt"], "forceDirect sends now: leave scheduledAt out")])
    if files and body.attachmentUrl is not None:
        raise InvalidInput([(["attachmentUrl"], "Give attachmentUrl or attachments, not both")])
    native: dict[str, Any] = {
        "instanceName": body.connectorId,
        "to": body.to,
        "lane": "urgent" if body.forceDirect else "normal",
        "priority": 10 if body.forceDirect else body.priority,
        "scheduledAt": body.scheduledAt,
        "requiresApproval": body.requiresApproval,
        "externalId": key,
        "contactName": body.contactName,
        "notes": body.notes,
        "messageType": body.messageType,
        "webhookUrl": None if body.webhookUrl is None else str(body.webhookUrl),
    }
    native = {k: v for k, v in native.items() if v is not None}
    direct: SendCommon
    with client_names():
        if not files and body.attachmentUrl is None:
            direct = validate(TextMessage, native | {"text": body.message}, context)
            return MessageToAccept(direct, "text", {"text": body.message}, body.externalId)
        url = None if body.attachmentUrl is None else str(body.attachmentUrl)
        native |= {"caption": body.message, "attachmentUrl": url}
        attachment = validate(AttachmentMessage, native, context)
    content: dict[str, Any] = {"caption": attachment.caption}
    if files:
        content["attachments"] = files
    else:
        content["attachmentUrl"] = str(attachment.attachmentUrl)
    return MessageToAccept(attachment, "attachment", content, body.externalId)


def queued(item: MessageToAccept, answer: dict[str, Any]) -> dict[str, Any]:
    """The SendSync message object of an accepted message."""
    body = item.body
    return {
        "id": answer["id"],
        "status": QUEUE_STATUS.get(answer["status"], "PENDING"),
        "to": body.to,
        "message": readable_text(item.content),
        "priority": body.priority,
        "connectorId": body.instanceName,
        "messageType": body.messageType,
        "createdAt": answer["queuedAt"],
        "externalId": item.reference,
    }


@API.post(
    "/api/queue/send",
    summary="Queue one message: JSON, or multipart/form-data with files in `attachments`",
    tag=TAG,
    body=QueueSend,
    response=QueuedMessage,
    status=201,
    errors=(400, 401, 403, 404, 409, 413, 415, 422, 503),
    scope="messages:write",
)
async def sendsync_send(request: web.Request) -> web.Response:
    """A repeated `Idempotency-Key` with the same body answers the first message again (with
    `Idempotent-Replayed: true`); with another body, 409."""
    caller = await authenticate(request)
    key = idempotency_key(request)
    files: list[dict[str, Any]] = []
    if request.content_type == "multipart/form-data":
        fields, files = await read_multipart(request, caller)
    else:
        fields = await read_object(request)
    try:
        context = await send_context(request, caller, fields.get("connectorId"))
        item = message_to_accept(fields, files, key, context)
        refuse_private_targets(request, {("attachmentUrl",): item.content.get("attachmentUrl")})
        with client_names():
            answer, status = await accept_one(request, caller, item)
    except (ApiError, web.HTTPException):
        await discard_files(request.app[STORE].files, files)
        raise
    replayed = {"Idempotent-Replayed": "true"} if status == 200 else {}
    return web.json_response(queued(item, answer), status=201, headers=replayed)


@API.post(
    "/api/queue/bulk",
    summary="Queue up to 1,000 messages (JSON), all or none",
    tag=TAG,
    body=QueueBulk,
    response=BulkQueued,
    status=201,
    errors=(400, 401, 409, 413, 415, 422, 503),
    scope="messages:write",
)
async def sendsync_bulk(request: web.Request) -> web.Response:
    """Item `i` of a request with an `Idempotency-Key` K is idempotent under `K:i`."""
    caller = await authenticate(request)
    key = idempotency_key(request)
    body = await read_json(request, QueueBulk)
    answer = await queue_many(request, caller, list(enumerate(body.messages)), "messages", key)
    return web.json_response(answer, status=201)


async def queue_many(
    request: web.Request,
    caller: Caller,
    numbered: list[tuple[int, dict[str, Any]]],
    where: str,
    key: str | None,
) -> dict[str, Any]:
    """Queue SendSync send bodies all or none: 400 naming each bad one as `[where, number,
    field]`; item `n` is idempotent under `key:n`."""
    found = await countries(request, caller, (raw.get("connectorId") for _, raw in numbered))
    items: list[tuple[int, MessageToAccept]] = []
    issues: Issues = []
    for number, raw in numbered:
        item_key = None if key is None else f"{key}:{number}"
        try:
            item = message_to_accept(raw, [], item_key, found.context(raw.get("connectorId")))
        except InvalidInput as e:
            issues += [([where, number, *i["path"]], i["message"]) for i in e.issues]
            continue
        items.append((number, item))
    if issues:
        raise InvalidInput(issues)
    refuse_private_targets(
        request, {(where, n, "attachmentUrl"): m.content.get("attachmentUrl") for n, m in items}
    )
    try:
        with client_names():
            result = await accept_many(request, caller, items, [])
    except ApiError as e:
        for issue in e.issues:
            if issue["path"][:1] == ["messages"]:
                issue["path"][0] = where
        raise
    answers = [queued(item, a) for (_, item), a in zip(items, result["messages"], strict=True)]
    return {"count": len(answers), "messages": answers}


@API.get(
    "/api/queue/template",
    summary="The .xlsx template of POST /api/queue/import: its columns and one example row",
    tag=TAG,
    errors=(401,),
    scope="messages:read",
    media=XLSX_MEDIA,
)
async def sendsync_template(request: web.Request) -> web.Response:
    await authenticate(request)
    return web.Response(
        body=template(),
        content_type=XLSX_MEDIA,
        headers={"Content-Disposition": 'attachment; filename="template_mensagens.xlsx"'},
    )


# An import file is parsed in memory: 1,000 rows of the template fit in far less.
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 1000


async def import_upload(request: web.Request) -> tuple[bytes, str | None]:
    """The `file` part of a multipart upload and the optional `connectorId` field; 415 unless
    multipart, 413 beyond `MAX_IMPORT_BYTES`, 400 without a file."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("Upload the file as multipart/form-data in the field file")
    data: bytes | None = None
    connector: str | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise InvalidInput([([], "Nested multipart bodies are not accepted")])
        if part.name not in ("file", "connectorId"):
            raise InvalidInput([([part.name or ""], "Send only file and connectorId")])
        raw = bytearray()
        while chunk := await part.read_chunk():
            raw.extend(chunk)
            if len(raw) > MAX_IMPORT_BYTES:
                raise PayloadTooLarge(f"An import file may be at most {MAX_IMPORT_BYTES} bytes")
        if part.name == "file":
            data = bytes(raw)
        else:
            connector = raw.decode("utf-8", errors="replace").strip() or None
    if data is None:
        raise InvalidInput([(["file"], "Upload a .xlsx or CSV file in the field file")])
    return data, connector


@API.post(
    "/api/queue/import",
    summary="Queue the rows of a .xlsx or CSV file (the template's columns) as one bulk",
    tag=TAG,
    response=BulkQueued,
    status=201,
    errors=(400, 401, 409, 413, 415, 422, 503),
    scope="messages:write",
)
async def sendsync_import(request: web.Request) -> web.Response:
    """Row `n` (the sheet's line number) is named as `["rows", n, field]` in errors; a
    `connectorId` form field is the connector of rows that leave theirs blank."""
    caller = await authenticate(request)
    key = idempotency_key(request)
    rows = await import_rows(request)
    return web.json_response(await queue_many(request, caller, rows, "rows", key), status=201)


async def import_rows(request: web.Request) -> list[tuple[int, dict[str, Any]]]:
    """The uploaded file's rows, each with the form's `connectorId` unless it names its own."""
    data, connector = await import_upload(request)
    rows = read_rows(data, MAX_IMPORT_ROWS)
    if connector is None:
        return rows
    return [(n, {"connectorId": connector} | row) for n, row in rows]


@API.post(
    "/api/queue/import/preview",
    summary="The rows POST /api/queue/import would queue and what is wrong with each, "
    "queuing nothing (the console's preview)",
    tag=TAG,
    response=ImportPreview,
    errors=(400, 401, 413, 415),
    scope="messages:write",
)
async def sendsync_import_preview(request: web.Request) -> web.Response:
    """Each row as read, and the issues its fields have; whether a connector exists and
    accepts the message is checked only when the file is imported."""
    caller = await authenticate(request)
    rows = await import_rows(request)
    found = await countries(request, caller, (raw.get("connectorId") for _, raw in rows))
    previewed: list[dict[str, Any]] = []
    for number, raw in rows:
        issues: list[dict[str, Any]] = []
        try:
            message_to_accept(raw, [], None, found.context(raw.get("connectorId")))
        except InvalidInput as e:
            issues = e.issues
        fields = {k: v if isinstance(v, str | bool) else str(v) for k, v in raw.items()}
        previewed.append({"row": number, "fields": fields, "issues": issues})
    return web.json_response({"rows": previewed})


def listed_attachments(message: Document, public_url: str) -> list[dict[str, Any]]:
    """A message's files: each upload at its `/attachments/{id}` address, or the one URL."""
    content = message.get("content") or {}
    uploads = [
        {
            "id": file["id"],
            "url": f"{public_url}/attachments/{file['id']}",
            "originalFileName": file.get("fileName"),
        }
        for file in content.get("attachments", [])
    ]
    for field in (*MEDIA_URLS.values(), "attachmentUrl"):
        url = content.get(field)
        if isinstance(url, str):
            name = content.get("fileName") or url.rsplit("/", 1)[-1].split("?", 1)[0] or None
            uploads.append({"id": message["_id"], "url": url, "originalFileName": name})
    return uploads


def listed(message: Document, public_url: str) -> dict[str, Any]:
    """A stored message as the SendSync queue list shows it."""
    return {
        "id": message["_id"],
        "to": message["to"],
        "message": readable_text(message.get("content")),
        "status": QUEUE_STATUS[message["status"]],
        "priority": message.get("priority", 5),
        "messageType": message.get("messageType", "GERAL"),
        "connectorId": message["instanceName"],
        "createdAt": iso_utc(message["createdAt"]),
        "sentAt": iso_utc(message.get("sentAt")),
        "scheduledAt": iso_utc(message.get("scheduledAt")),
        "externalId": message.get("reference"),
        "contactName": message.get("contactName"),
        "notes": message.get("notes"),
        "error": message.get("error"),
        "attachments": listed_attachments(message, public_url),
    }


def queue_filter(caller: Caller, query: QueueQuery) -> tuple[dict[str, Any], str]:
    """The store filter of a queue listing and its index, through the native listing's plan."""
    native = MessageQuery.model_validate(
        {
            "search": query.search,
            "instanceName": query.connectorId,
            "messageType": query.messageType,
            "dateFrom": query.dateFrom,
            "dateTo": query.dateTo,
        }
    )
    extra: dict[str, Any] = {}
    if query.externalId is not None:
        extra["reference"] = query.externalId
    if query.status is not None:
        stored = [status for status, shown in QUEUE_STATUS.items() if shown == query.status]
        extra["status"] = {"$in": stored}
    return listing_plan(caller, native, extra)


@API.get(
    "/api/queue/list",
    summary="Your queued messages, newest first, with filters and pages (up to 250 a page)",
    tag=TAG,
    query=QueueQuery,
    response=QueueList,
    errors=(400, 401),
    scope="messages:read",
)
async def sendsync_list(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, QueueQuery)
    check_paging(query.page, query.limit, None, narrow="narrow it with dateTo", cursors=False)
    where, index = queue_filter(caller, query)
    store = request.app[STORE]
    total = await store.messages.count_documents(where, hint=index)
    found = (
        store.messages.find(where)
        .sort(NEWEST_FIRST)
        .skip((query.page - 1) * query.limit)
        .limit(query.limit)
        .hint(index)
    )
    public_url = request.app[SETTINGS].public_url.rstrip("/")
    return web.json_response(
        {
            "data": [listed(m, public_url) for m in await found.to_list(None)],
            "meta": page_meta(total, query.page, query.limit),
        }
    )


# An address with one @, no spaces and a dot in its domain: the check a send form makes.
EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def contact_identifier(caller: Caller, body: ContactSave) -> str:
    """A contact's identifier as stored: E.164 digits, or the address in lower case; 400 when
    it is not a number or an address of its `type`."""
    if body.type == "EMAIL":
        if not EMAIL_ADDRESS.match(body.identifier):
            raise InvalidInput([(["identifier"], "Must be an e-mail address for type EMAIL")])
        return body.identifier.lower()
    try:
        return normalized(body.identifier, caller.default_country)
    except InvalidPhoneNumber as e:
        raise InvalidInput([(["identifier"], f"{ISSUE_CODE}: {e}")]) from e


@API.get(
    "/api/contacts",
    summary="Your contacts, by identifier (pages of up to 1,000; X-Total-Count says how many)",
    tag=TAG,
    query=ContactsQuery,
    response=list[ContactView],
    errors=(400, 401),
    scope="contacts:read",
)
async def sendsync_contacts(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, ContactsQuery)
    check_paging(query.page, query.limit, None, narrow="filter it by type", cursors=False)
    where: dict[str, Any] = {"tenantId": caller.tenant_id}
    if query.type == "EMAIL":
        where["type"] = "EMAIL"
    elif query.type == "WHATSAPP":
        where["type"] = {"$ne": "EMAIL"}
    store = request.app[STORE]
    total = await store.contacts.count_documents(where)
    found = (
        store.contacts.find(where)
        .sort("identifier", 1)
        .skip((query.page - 1) * query.limit)
        .limit(query.limit)
    )
    return web.json_response(
        [contact_view(c) for c in await found.to_list(None)],
        headers={"X-Total-Count": str(total)},
    )


@API.post(
    "/api/contacts",
    summary="Create a contact, or rename the one with this identifier",
    tag=TAG,
    body=ContactSave,
    response=ContactView,
    status=201,
    errors=(400, 401),
    scope="contacts:write",
)
async def sendsync_save_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactSave)
    changes: dict[str, Any] = {"type": body.type}
    if body.name is not None:
        changes["name"] = body.name
    contact, created = await upsert_contact(
        request.app[STORE], caller.tenant_id, contact_identifier(caller, body), changes
    )
    return web.json_response(contact_view(contact), status=201 if created else 200)


@API.patch(
    "/api/contacts/{id}/status",
    summary="Activate or deactivate a contact (sends to an inactive one are refused)",
    tag=TAG,
    body=ContactStatus,
    response=ContactView,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def sendsync_contact_status(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactStatus)
    contact = await set_contact_active(
        request, caller, request.match_info["id"], body.active, body.reason
    )
    return web.json_response(contact_view(contact))


@API.delete(
    "/api/contacts/{id}",
    summary="Delete a contact (its messages stay)",
    tag=TAG,
    response=ContactDeleted,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def sendsync_delete_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    contact = await delete_one_contact(request, caller, request.match_info["id"])
    return web.json_response({"id": contact["_id"], "deleted": True})
