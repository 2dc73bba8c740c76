"""Accepting more messages than one bulk request may hold, a page at a time."""

from collections.abc import Iterable

from aiohttp import web

from ingress_api.accept.accepting import MessageToAccept, accept_many
from ingress_api.auth import Caller
from ingress_api.schemas.messages import BULK_MAX_MESSAGES


async def accept_in_pages(
    request: web.Request,
    caller: Caller,
    messages: Iterable[MessageToAccept],
    page: int = BULK_MAX_MESSAGES,
) -> int:
    """Accept the messages `page` at a time (a bulk request's most by default), each page all
    or none; how many were accepted."""
    accepted = 0
    items: list[tuple[int, MessageToAccept]] = []
    for message in messages:
        items.append((len(items), message))
        if len(items) == page:
            accepted += int((await accept_many(request, caller, items, []))["accepted"])
            items = []
    if items:
        accepted += int((await accept_many(request, caller, items, []))["accepted"])
    return accepted
