"""Removing expired documents where the store refuses TTL indexes (FerretDB v1 does).

`Store.connect` tries each declared TTL index; when the server refuses the
option it creates the index without it and lists the expiry here instead, and the
service owning the collection runs `sweeping`, which deletes what a TTL index
would have, every so often. Where TTL indexes exist (MongoDB), nothing is swept.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from lanegate.events import utcnow

if TYPE_CHECKING:  # the store lists its swept expiries with this module's Expiry
    from lanegate.store import Store

log = structlog.get_logger(__name__)

# The codes a server answers a TTL index it cannot make with (FerretDB v1: NotImplemented).
TTL_REFUSED = frozenset({238, 67, 197})


@dataclass(frozen=True)
class Expiry:
    """A TTL index: a document of `collection` goes once its `field` is `seconds` old."""

    collection: str
    field: str
    seconds: float


async def sweep(store: "Store", expiries: Collection[Expiry], now: datetime) -> int:
    """Delete the documents these expiries let go of at `now`; how many were deleted."""
    deleted = 0
    for expiry in expiries:
        cutoff = now - timedelta(seconds=expiry.seconds)
        result = await store.db[expiry.collection].delete_many({expiry.field: {"$lt": cutoff}})
        deleted += result.deleted_count
    return deleted


@asynccontextmanager
async def sweeping(
    store: "Store",
    collections: Collection[str],
    every: float,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIterator[None]:
    """While the block runs, sweep the store's swept expiries of these collections every
    `every` seconds (nothing to do where the store has TTL indexes)."""
    expiries = [e for e in store.swept if e.collection in collections]
    if not expiries:
        yield
        return

    async def loop() -> None:
        while True:
            try:
                await sweep(store, expiries, clock())
            except Exception as e:
                # The store away for a moment: the next round sweeps what this one left.
                log.warning("expired documents not swept", error=repr(e))
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
