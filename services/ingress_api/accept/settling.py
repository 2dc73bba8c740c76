"""Announcing stored messages to the scheduler, and settling what a send answered 503 left:
a message with an `externalId` is announced (a repeat finds it), any other is deleted."""

import asyncio
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from lanegate.broker import Broker
from lanegate.events import accepted
from lanegate.lifecycle import CANCELABLE
from lanegate.service import BROKER, STORE
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)

SETTLE_FOR_SECONDS = 120.0


def keyed(messages: list[Document]) -> list[Document]:
    """The messages a repeat can find again by their `externalId`."""
    return [m for m in messages if m.get("externalId")]


async def announce(broker: Broker, messages: list[Document]) -> None:
    """Publish the `message.accepted` of each of these stored messages still waiting to be
    planned, as their accept did (a repeat of one already planned changes nothing)."""
    waiting = [m for m in messages if m["status"] in CANCELABLE]
    if waiting:
        await broker.publish_many([accepted(m, at=m["createdAt"]) for m in waiting])


# A send can fail halfway: an insert whose answer was lost (the store restarted under it) may
# have landed, and a failed publish leaves rows nobody will plan. Its client is told to retry;
# a keyed message is announced because the client's repeat with that key is answered 200 with
# it (so it is queued once either way), any other is deleted because the client's new send is
# the only one.
async def settle(
    messages: list[Document],
    store: Store,
    broker: Broker,
    *,
    within: float = SETTLE_FOR_SECONDS,
    every: float = 1.0,
) -> None:
    """Delete the messages without an `externalId`, announce those with one as stored,
    trying again for `within` seconds while the store or the broker fails; then raise."""
    loose = [m["_id"] for m in messages if not m.get("externalId")]
    ids = [m["_id"] for m in keyed(messages)]
    deadline = time.monotonic() + within
    while True:
        try:
            if loose:
                await store.messages.delete_many(
                    {"_id": {"$in": loose}, "status": {"$in": list(CANCELABLE)}}
                )
                loose = []
            if ids:
                await announce(broker, await store.messages.find({"_id": {"$in": ids}}).to_list())
                ids = []
            return
        except Exception:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(every)


class FailedSendSettler:
    """The settling tasks of one ingress-api process, cancelled when it stops."""

    def __init__(self, store: Store, broker: Broker) -> None:
        self._store, self._broker = store, broker
        self._tasks: set[asyncio.Task[None]] = set()

    def settle_later(self, messages: list[Document]) -> None:
        """Settle these messages in the background (see the module docstring)."""
        ids = [m["_id"] for m in messages]

        async def run() -> None:
            try:
                await settle(messages, self._store, self._broker)
            except Exception as e:
                log.error("messages of a failed send left as they are", ids=ids, error=repr(e))

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


FAILED_SEND_SETTLER = web.AppKey("failed_send_settler", FailedSendSettler)


async def settling_failed_sends(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the process's settling tasks, stopped before the store closes."""
    app[FAILED_SEND_SETTLER] = FailedSendSettler(app[STORE], app[BROKER])
    yield
    await app[FAILED_SEND_SETTLER].close()
