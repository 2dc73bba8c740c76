"""Chats: one row per instance and contact, newest first, with what is unread."""

from typing import Any

from aiohttp import web

from ingress_api.auth import authenticate
from ingress_api.contact_book import chat_list_read, phone_in_path
from ingress_api.registry import API
from ingress_api.requests import newest_first_cursor, own_instance, read_query
from ingress_api.schemas.chats import ChatList, ChatQuery, ChatView
from lanegate.conversations import mark_read
from lanegate.errors import NotFound
from lanegate.events import utcnow
from lanegate.service import STORE
from lanegate.store import Document
from lanegate.timestamps import iso_utc


def chat_view(chat: Document) -> dict[str, Any]:
    return {
        "instanceName": chat["instanceName"],
        "contact": chat["contact"],
        "lastMessage": chat["lastMessage"],
        "lastMessageAt": iso_utc(chat["lastMessageAt"]),
        "unread": int(chat.get("unread") or 0),
        "readAt": iso_utc(chat.get("readAt")),
    }


@API.get(
    "/chats",
    summary="Your chats, one per instance and contact, newest first, with unread counts",
    tag="contacts",
    query=ChatQuery,
    response=ChatList,
    errors=(400, 401),
    scope="contacts:read",
)
async def list_chats(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, ChatQuery)
    read = chat_list_read(caller.tenant_id, query.instanceName, query.cursor)
    page = await read.find(request.app[STORE], query.limit + 1).to_list(None)
    following = (
        newest_first_cursor(page[query.limit - 1]["lastMessageAt"], page[query.limit - 1]["_id"])
        if len(page) > query.limit
        else None
    )
    return web.json_response(
        {"chats": [chat_view(c) for c in page[: query.limit]], "pagination": {"next": following}}
    )


@API.post(
    "/chats/{instanceName}/{phone}/read",
    summary="Mark a chat read: its unread count goes back to 0",
    tag="contacts",
    response=ChatView,
    errors=(400, 401, 403, 404),
    scope="contacts:write",
)
async def read_chat(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    instance = await own_instance(store, caller, request.match_info["instanceName"])
    phone = phone_in_path(caller, request.match_info["phone"])
    chat = await mark_read(store, caller.tenant_id, instance["_id"], phone, utcnow())
    if chat is None:
        raise NotFound("No chat with this contact on this instance")
    return web.json_response(chat_view(chat))
