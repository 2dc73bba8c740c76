"""Listing messages: filters, paging, newest first, each query on a named index."""

from typing import Any

from aiohttp import web

from ingress_api.auth import authenticate
from ingress_api.contact_book import conversation_page, identifier_in_path
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
from lanegate.service import STORE
from lanegate.store import Document


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
    messages, following = await conversation_page(
        request.app[STORE],
        caller,
        identifier_in_path(caller, request.match_info["phone"], "phone"),
        instance_name=query.instanceName,
        cursor=query.cursor,
        limit=query.limit,
    )
    return web.json_response({"messages": messages, "pagination": {"next": following}})
