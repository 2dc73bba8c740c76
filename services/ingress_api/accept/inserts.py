"""The process's grouped message inserts: single sends made at once share one `insert_many`."""

from collections.abc import AsyncIterator

from aiohttp import web

from lanegate.service import STORE
from lanegate.store.grouped import GroupedInserts

MESSAGE_INSERTS = web.AppKey("message_inserts", GroupedInserts)


async def message_inserts(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the process's grouped message inserts, on its store."""
    app[MESSAGE_INSERTS] = GroupedInserts(app[STORE].messages)
    yield
