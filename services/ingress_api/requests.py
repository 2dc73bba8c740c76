"""What route handlers share: reading bodies and queries, the caller's instance, paging, the
message listing's filter, the message read-back, contacts by id or number, the send-error
table, and clearing an instance's queue."""

import base64
import contextlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ingress_api.auth import Caller, require_own_instance
from ingress_api.schemas.base import parse_instance_name
from ingress_api.schemas.message_reads import MessageQuery
from lanegate import lifecycle, usage
from lanegate.errors import (
    InvalidInput,
    NotFound,
    TargetNotAllowed,
    UnsupportedMediaType,
)
from lanegate.events import utcnow
from lanegate.holds import pause_holds
from lanegate.lifecycle import PUBLIC, Status
from lanegate.outbound import literal_refusal
from lanegate.phones import InvalidPhoneNumber, normalized, written_digits
from lanegate.providers.capabilities import Channel, providers_of
from lanegate.service import BROKER, SETTINGS, STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 415 unless sent as JSON, 400 on bad JSON or another JSON type,
    413 when too big."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the body as application/json")
    raw = await request.read()
    try:
        data: Any = json.loads(raw) if raw else None
    except (ValueError, RecursionError) as e:
        raise InvalidInput([([], f"Body is not valid JSON: {e}")]) from e
    if not isinstance(data, dict):
        raise InvalidInput([([], "Body must be a JSON object")])
    return data


def validate[M: BaseModel](
    model: type[M], data: dict[str, Any], context: dict[str, Any] | None = None
) -> M:
    """`data` as `model` (validators read `context`); 400 with one issue per bad field."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        raise InvalidInput.from_pydantic(e) from e


async def read_json[M: BaseModel](
    request: web.Request, model: type[M], context: dict[str, Any] | None = None
) -> M:
    """Parse the body as `model`."""
    return validate(model, await read_object(request), context)


def read_query[M: BaseModel](
    request: web.Request, model: type[M], context: dict[str, Any] | None = None
) -> M:
    """Parse the query string as `model` (validators read `context`); 400 with `issues` on bad
    or unknown parameters."""
    try:
        return model.model_validate(dict(request.query), context=context)
    except ValidationError as e:
        raise InvalidInput.from_pydantic(e) from e


def refuse_private_targets(request: web.Request, urls: Mapping[tuple[str | int, ...], Any]) -> None:
    """422 naming each field whose URL's host is a private address literal (a name is checked
    when it is called), unless private targets are allowed."""
    if request.app[SETTINGS].allow_private_targets:
        return
    issues = [
        (path, f"Must reach a public address: {reason}")
        for path, url in urls.items()
        if url is not None and (reason := literal_refusal(str(url)))
    ]
    if issues:
        raise TargetNotAllowed(issues)


NAME_ISSUE = "Must follow {tenant}__{client}__{label} format"


def pause_view(instance: Document) -> dict[str, Any] | None:
    """The pause holding the instance's messages now, or None (one whose `until` passed
    lifted itself)."""
    paused = instance.get("paused")
    if not isinstance(paused, dict):
        return None
    until = paused.get("until")
    if not pause_holds(until, utcnow()):
        return None
    return {
        "reason": str(paused.get("reason") or ""),
        "since": iso_utc(paused.get("since")),
        "until": iso_utc(until),
        "by": paused.get("by") or "provider",
    }


async def own_instance(store: Store, caller: Caller, name: str) -> Document:
    """The caller's instance by name: 400 if malformed, 403 if another tenant's, 404 if absent."""
    parts = parse_instance_name(name)
    if parts is None:
        raise InvalidInput([(["instanceName"], NAME_ISSUE)])
    require_own_instance(caller, parts[0])
    instance = await store.instances.find_one({"_id": name, "tenantId": caller.tenant_id})
    if instance is None:
        raise NotFound(f"Instance {name} not found")
    return instance


# How far `page` reaches (page * limit): a skip reads every row it passes.
MAX_PAGED_ROWS = 10_000


def check_paging(
    page: int, limit: int, cursor: str | None, *, narrow: str, cursors: bool = True
) -> None:
    """400 when `page` reaches past `MAX_PAGED_ROWS` rows (saying to `narrow` the listing, or
    to page on with a cursor where the route has `cursors`), or comes with a `cursor`."""
    if cursor is not None and page != 1:
        raise InvalidInput([(["page"], "Give page or cursor, not both")])
    if page * limit > MAX_PAGED_ROWS:
        raise InvalidInput(
            [
                (
                    ["page"],
                    f"page * limit may be at most {MAX_PAGED_ROWS}: to go further, {narrow}"
                    + (
                        " or page on with cursor (pagination.next of each answer)"
                        if cursors
                        else ""
                    ),
                )
            ]
        )


def newest_first_cursor(at: datetime, document_id: str) -> str:
    """The cursor of a listing that goes newest first by a time, the id breaking ties."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{document_id}".encode()).decode()


def after_newest_first(cursor: str, field: str) -> dict[str, Any]:
    """The filter of what comes after a `newest_first_cursor`, by `field` then by id."""
    try:
        written, document_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(written)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput([(["cursor"], "Not a cursor this API gave out")]) from e
    return {"$or": [{field: {"$lt": at}}, {field: at, "_id": {"$lt": document_id}}]}


def page_meta(total: int, page: int, limit: int) -> dict[str, int]:
    """The `meta` of a paged listing."""
    return {"total": total, "page": page, "limit": limit, "pages": (total + limit - 1) // limit}


def channel_instances(caller: Caller, channel: Channel) -> dict[str, Any]:
    """The store filter of the caller's instances that send on `channel`."""
    return {"tenantId": caller.tenant_id, "provider": {"$in": providers_of(channel)}}


async def pick_instance(store: Store, where: dict[str, Any], none_found: str) -> str:
    """The instance among `where` a message goes through when the caller names none: the
    primary open one, else the open one with the shortest queue, else (none open) the primary
    or the shortest queue, where the message waits for it to connect; 404 when there is none."""
    instances = await store.instances.find(where, {"state": 1, "isPrimary": 1}).to_list(None)
    if not instances:
        raise NotFound(none_found)
    queues = {
        i["_id"]: await store.messages.count_documents(
            {"instanceName": i["_id"], "status": {"$in": list(lifecycle.WAITING)}}
        )
        for i in instances
    }

    def rank(i: Document) -> tuple[bool, bool, int, str]:
        return (i["state"] != "open", not i.get("isPrimary"), queues[i["_id"]], i["_id"])

    return str(min(instances, key=rank)["_id"])


# The leading filter picks the index (see store/indexes.py); the first present wins.
INDEX_BY_FILTER = ("externalId", "reference", "to", "instanceName", "status", "lane", "messageType")
NEWEST_FIRST = [("createdAt", -1), ("_id", -1)]


def listing_plan(
    caller: Caller, query: MessageQuery, extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """The store filter for a listing (with the `extra` conditions of a listing of another
    shape) and the index that serves it."""
    where: dict[str, Any] = {"tenantId": caller.tenant_id, **(extra or {})}
    if query.status is not None:
        hidden = [stored for stored, shown in PUBLIC.items() if shown == query.status]
        where["status"] = {"$in": [query.status, *hidden]} if hidden else query.status
    for field in ("externalId", "to", "instanceName", "lane", "messageType"):
        value = getattr(query, field)
        if value is not None:
            where[field] = value
    if query.dateFrom or query.dateTo:
        where["createdAt"] = {
            **({"$gte": query.dateFrom} if query.dateFrom else {}),
            **({"$lte": query.dateTo} if query.dateTo else {}),
        }
    if query.search is not None:
        pattern = {"$regex": re.escape(query.search), "$options": "i"}
        where["$or"] = [
            {"to": pattern},
            {"contactName": pattern},
            {"content.text": pattern},
            {"content.caption": pattern},
            {"content.body": pattern},
            *_recipient(query.search, caller.default_country),
        ]
    leading = next((f for f in INDEX_BY_FILTER if f in where), None)
    return where, f"tenant_{leading}_created_id" if leading else "tenant_created_id"


def _recipient(search: str, country: str | None) -> list[dict[str, Any]]:
    """What a search written as a phone number matches of the stored recipient (E.164
    digits): its digits anywhere, and the whole number as a send would read it."""
    digits = written_digits(search)
    if digits is None:
        return []
    matches: list[dict[str, Any]] = [{"to": {"$regex": re.escape(digits)}}]
    with contextlib.suppress(InvalidPhoneNumber):  # a part of a number: its digits will do
        matches.append({"to": normalized(search, country)})
    return matches


SEND_ERRORS = (400, 401, 403, 404, 409, 413, 422, 503)


# A repeated externalId with the same body answers 200 with the first message.
REPEATED_SEND_STATUS = (200,)


def message_view(message: Document) -> dict[str, Any]:
    """A stored message as `GET /message/{id}` and listings show it: its status and what was
    asked to be sent (never the instance's webhook secret)."""
    content = message.get("content", {})
    return {
        "id": message["_id"],
        "instanceName": message["instanceName"],
        "lane": message["lane"],
        "to": message["to"],
        "type": message["type"],
        "status": lifecycle.public(message["status"]),
        "createdAt": iso_utc(message["createdAt"]),
        "sentAt": iso_utc(message.get("sentAt")),
        "deliveredAt": iso_utc(message.get("deliveredAt")),
        "readAt": iso_utc(message.get("readAt")),
        "error": message.get("error"),
        "priority": message.get("priority", 5),
        "scheduledAt": iso_utc(message.get("scheduledAt")),
        "validUntil": iso_utc(message.get("validUntil")),
        "text": content.get("text", content.get("body", content.get("caption"))),
        "sentText": message.get("textSent"),
        "messageType": message.get("messageType", "GERAL"),
        "externalId": message.get("externalId"),
        "contactName": message.get("contactName"),
        "notes": message.get("notes"),
        "webhookUrl": message.get("webhookUrl"),
        "attempts": int(message.get("attempts") or 0),
        **asked_content(message["type"], content),
    }


# The URL field of each media kind's stored content.
MEDIA_URLS = {
    "image": "imageUrl",
    "document": "documentUrl",
    "audio": "audioUrl",
    "video": "videoUrl",
}


def asked_content(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """The kind-specific part of what was asked to be sent, in the read-back's field names."""
    if kind in MEDIA_URLS or kind == "attachment":
        return _media(kind, content)
    if kind == "location":
        return {
            "location": {k: content.get(k) for k in ("latitude", "longitude", "name", "address")}
        }
    if kind == "template":
        return {
            "template": {
                "id": content.get("templateId"),
                "name": content.get("name"),
                "language": content.get("language"),
                "variables": content.get("variables", []),
            }
        }
    if kind == "text":  # an e-mail's subject and html part, when it has them
        return {k: content[k] for k in ("subject", "html") if content.get(k)}
    interactive = {k: content[k] for k in ("header", "footer") if content.get(k)}
    if kind == "buttons":
        return {"buttons": content.get("buttons", []), **interactive}
    if kind == "list":
        return {
            "list": {"button": content.get("button"), "sections": content.get("sections", [])},
            **interactive,
        }
    return {}


def _media(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """`media` (the file, or the first uploaded one) and, for uploads, every file."""
    url = content.get(MEDIA_URLS.get(kind, "attachmentUrl"))
    if url is not None:
        media = {"url": url, "filename": content.get("fileName"), "caption": content.get("caption")}
        return {"media": {k: v for k, v in media.items() if v is not None}}
    files = [
        {
            "attachmentId": file["id"],
            "filename": file.get("fileName"),
            "mimeType": file.get("contentType"),
            **({"caption": content["caption"]} if content.get("caption") else {}),
        }
        for file in content.get("attachments", [])
    ]
    return {"media": files[0] if files else None, "attachments": files}


async def clear_waiting(request: web.Request, instance: Document) -> int:
    """Take every waiting message of an instance out of its queue (a flush, a delete); a count.

    Untried ones become `canceled`. One back in `pending` after an attempt that may have
    reached the phone is withdrawn through provider-sender, which asks the provider: `sent`
    if it has the message, `canceled` if it surely has not, else `failed` (outcome_unknown).
    It is never sent again.
    """
    store, now = request.app[STORE], utcnow()
    match = {"instanceName": instance["_id"]}
    untried = await lifecycle.retire_all(store, match, Status.CANCELED, now)
    usage.count(
        store,
        instance["tenantId"],
        instance["_id"],
        instance["provider"],
        usage.Counted.CANCELED,
        now,
        untried,
    )
    withdrawn = 0
    while await lifecycle.withdraw(store, request.app[BROKER], match, Status.CANCELED, now):
        withdrawn += 1
    return untried + withdrawn
