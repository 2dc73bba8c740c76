"""Listing messages: filters, paging, newest first, each query on a named index."""

from typing import Any

from aiohttp import web

from ingress_api.auth import Caller, authenticate
from ingress_api.countries import phone_context
from ingress_api.registry import API
from ingress_api.requests import (
    NEWEST_FIRST,
    after_newest_first,
    check_paging,
    listing_plan,
    message_view,
    newest_first_cursor,
    page_meta,
    read_query,
)
from ingress_api.schemas.message_reads import (
    ContactMessages,
    ContactMessagesQuery,
    MessageList,
    MessageQuery,
)
from lanegate.conversations import readable_text
from lanegate.errors import InvalidInput
from lanegate.lifecycle import public
from lanegate.phones import ISSUE_CODE, InvalidPhoneNumber, normalized
from lanegate.service import STORE
from lanegate.store import Document
from lanegate.timestamps import iso_utc


def listed(message: Document) -> dict[str, Any]:
    """A message as listings show it: the same as `GET /message/{id}`."""
    return message_view(message)


@API.get(
    "/messages",
    summary="Your messages, newest first, with filters and pages",
    tag="messages",
    query=MessageQuery,
    response=MessageList,
    errors=(400, 401),
    scope="messages:read",
)
async def list_messages(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, MessageQuery, phone_context(caller.default_country))
    check_paging(query.page, query.limit, query.cursor, narrow="narrow it with dateTo")
    where, index = listing_plan(caller, query)
    store = request.app[STORE]
    total = await store.messages.count_documents(where, hint=index)
    if query.cursor is not None:
        where = {"$and": [where, after_newest_first(query.cursor, "createdAt")]}
    found = (
        store.messages.find(where)
        .sort(NEWEST_FIRST)
        .skip((query.page - 1) * query.limit)
        .limit(query.limit + 1)
        .hint(index)
    )
    page = await found.to_list(None)
    following = (
        newest_first_cursor(page[query.limit - 1]["createdAt"], page[query.limit - 1]["_id"])
        if len(page) > query.limit
        else None
    )
    return web.json_response(
        {
            "data": [listed(m) for m in page[: query.limit]],
            "meta": page_meta(total, query.page, query.limit),
            "pagination": {"next": following},
        }
    )


@API.get(
    "/contacts/{phone}/messages",
    summary="A contact's conversation, both directions, newest first, with a cursor",
    tag="contacts",
    query=ContactMessagesQuery,
    response=ContactMessages,
    errors=(400, 401),
    scope="contacts:read",
)
async def contact_messages(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, ContactMessagesQuery)
    try:
        phone = normalized(request.match_info["phone"], caller.default_country)
    except InvalidPhoneNumber as e:
        raise InvalidInput([(["phone"], f"{ISSUE_CODE}: {e}")]) from e
    store = request.app[STORE]
    sent: dict[str, Any] = {"tenantId": caller.tenant_id, "to": phone}
    received: dict[str, Any] = {"tenantId": caller.tenant_id, "from": phone}
    if query.instanceName is not None:
        sent["instanceName"] = received["instanceName"] = query.instanceName
    if query.cursor:
        sent = {"$and": [sent, after_newest_first(query.cursor, "createdAt")]}
        received = {"$and": [received, after_newest_first(query.cursor, "receivedAt")]}
    # Each side gives at most a page; the newest of both make the page.
    outbound = await (
        store.messages.find(sent)
        .sort(NEWEST_FIRST)
        .limit(query.limit + 1)
        .hint("tenant_to_created_id")
        .to_list(None)
    )
    inbound = await (
        store.inbound_messages.find(received)
        .sort([("receivedAt", -1), ("_id", -1)])
        .limit(query.limit + 1)
        .hint("tenant_from_received_id")
        .to_list(None)
    )
    both = sorted(
        [(m["createdAt"], m["_id"], m) for m in outbound]
        + [(m["receivedAt"], m["_id"], m) for m in inbound],
        key=lambda entry: (entry[0], entry[1]),
        reverse=True,
    )
    page = both[: query.limit]
    numbers = await _instance_numbers(request, caller, {m["instanceName"] for m in outbound})
    following = None
    if len(both) > query.limit:
        at, message_id, _ = page[-1]
        following = newest_first_cursor(at, message_id)
    return web.json_response(
        {
            "messages": [
                _in_conversation(m, numbers) if "direction" not in m else _received(m)
                for _, _, m in page
            ],
            "pagination": {"next": following},
        }
    )


async def _instance_numbers(
    request: web.Request, caller: Caller, names: set[str]
) -> dict[str, str | None]:
    """The phone number of each of these instances of the caller (None until it connects)."""
    if not names:
        return {}
    found = request.app[STORE].instances.find(
        {"tenantId": caller.tenant_id, "_id": {"$in": sorted(names)}}, {"phoneNumber": 1}
    )
    return {i["_id"]: i.get("phoneNumber") async for i in found}


def furthest_receipt(message: Document) -> str:
    """An outbound message's status as a conversation shows it: how far it got."""
    status = public(message["status"])
    if status != "sent":
        return status
    if message.get("readAt"):
        return "read"
    return "delivered" if message.get("deliveredAt") else "sent"


def _in_conversation(message: Document, numbers: dict[str, str | None]) -> dict[str, Any]:
    return {
        "id": message["_id"],
        "direction": "outbound",
        "instanceName": message["instanceName"],
        "from": numbers.get(message["instanceName"]),
        "to": message["to"],
        "type": message["type"],
        "text": readable_text(message.get("content")),
        "timestamp": iso_utc(message["createdAt"]),
        "status": furthest_receipt(message),
    }


def _received(message: Document) -> dict[str, Any]:
    return {
        "id": message["_id"],
        "direction": "inbound",
        "instanceName": message["instanceName"],
        "from": message["from"],
        "to": message.get("to"),
        "type": message["type"],
        "text": message.get("text"),
        "timestamp": iso_utc(message["receivedAt"]),
        "status": "received",
        "pushName": message.get("pushName"),
        "content": message.get("content"),
    }
