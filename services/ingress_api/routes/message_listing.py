"""Listing messages: filters, paging, newest first, each query on a named index."""

import contextlib
import re
from typing import Any

from aiohttp import web

from ingress_api.auth import Caller, authenticate
from ingress_api.contact_reads import NEWEST_FIRST, conversation_page, phone_in_path
from ingress_api.countries import phone_context
from ingress_api.registry import API
from ingress_api.requests import (
    after_newest_first,
    check_paging,
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
from lanegate.lifecycle import PUBLIC
from lanegate.phones import InvalidPhoneNumber, normalized, written_digits
from lanegate.service import STORE
from lanegate.store import Document

# The leading filter picks the index (see store/indexes.py); the first present wins.
INDEX_BY_FILTER = ("externalId", "to", "instanceName", "status", "lane", "messageType")


def plan(caller: Caller, query: MessageQuery) -> tuple[dict[str, Any], str]:
    """The store filter for a listing and the index that serves it."""
    where: dict[str, Any] = {"tenantId": caller.tenant_id}
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
    where, index = plan(caller, query)
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
    messages, following = await conversation_page(
        request.app[STORE],
        caller,
        phone_in_path(caller, request.match_info["phone"]),
        instance_name=query.instanceName,
        cursor=query.cursor,
        limit=query.limit,
    )
    return web.json_response({"messages": messages, "pagination": {"next": following}})
