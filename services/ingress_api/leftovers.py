"""What a send answered 503 may leave in the store, settled once the store answers again.

An insert whose answer was lost (the store restarted under it) may have landed,
and a publish that failed while the store was away left rows nobody will plan.
Its client was told to retry. A message with an `externalId` is announced: the
client's retry with that key finds it and is answered 200 with it, so it is
queued once either way. Any other is deleted, so the client's new send is the
only one. Both run in the background, for a while, as soon as the store lets.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from pymongo.errors import PyMongoError

from lanegate.broker import Broker
from lanegate.events import MessageAccepted, accepted
from lanegate.service import BROKER, STORE
from lanegate.statuses import CANCELABLE
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)

SETTLE_FOR_SECONDS = 120.0


def first_event(message: Document) -> MessageAccepted:
    """The `message.accepted` of a stored message, as its accept publishes it."""
    return accepted(message, at=message["createdAt"])


async def settle(
    messages: list[Document],
    store: Store,
    broker: Broker,
    *,
    within: float = SETTLE_FOR_SECONDS,
    every: float = 1.0,
) -> None:
    """Announce the keyed messages the store holds, delete the others, trying again for
    `within` seconds while the store (or the broker) is away; raises when it never got there."""
    keyed = [m["_id"] for m in messages if m.get("externalId")]
    loose = [m["_id"] for m in messages if not m.get("externalId")]
    deadline = time.monotonic() + within
    while True:
        try:
            if loose:
                await store.messages.delete_many(
                    {"_id": {"$in": loose}, "status": {"$in": list(CANCELABLE)}}
                )
                loose = []
            if keyed:
                waiting = {"_id": {"$in": keyed}, "status": {"$in": list(CANCELABLE)}}
                found = store.messages.find(waiting)
                await broker.publish_many([first_event(m) async for m in found])
                keyed = []
            return
        except (PyMongoError, ConnectionError, RuntimeError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(every)


class Leftovers:
    """The settling tasks of one ingress-api process, cancelled when it stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def settle_later(self, app: web.Application, messages: list[Document]) -> None:
        """Settle these messages in the background (see the module docstring)."""
        ids = [m["_id"] for m in messages]

        async def run() -> None:
            try:
                await settle(messages, app[STORE], app[BROKER])
            except Exception as e:
                log.error("messages of a failed send left as they are", ids=ids, error=repr(e))

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


LEFTOVERS = web.AppKey("leftovers", Leftovers)


async def leftovers(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the process's settling tasks, stopped before the store closes."""
    app[LEFTOVERS] = Leftovers()
    yield
    await app[LEFTOVERS].close()
