"""A tenant's usage, counted as it happens: one record per tenant, instance and UTC day, the
events of each second adding to its counts (an upsert), so that reading usage never scans
messages."""

import asyncio
import contextvars
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

import structlog
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from lanegate.health import day_of
from lanegate.providers.capabilities import channel_of
from lanegate.store import Document, Store, in_parts

log = structlog.get_logger(__name__)

# Days older than this may be swept (their record's `expiresAt`).
KEPT = timedelta(days=400)
# How long a process sums its counts before writing them.
WRITTEN_EVERY = timedelta(seconds=1)


class Counted(StrEnum):
    """What a day's usage record counts."""

    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    CANCELED = "canceled"
    WEBHOOKS_DELIVERED = "webhooksDelivered"
    WEBHOOKS_FAILED = "webhooksFailed"
    OTP_SENT = "otpSent"
    OTP_VERIFIED = "otpVerified"


def _upsert(
    tenant_id: str, instance_name: str, provider: str | None, at: datetime, counts: dict[str, int]
) -> tuple[Document, Document]:
    """The filter and update adding `counts` to the record of the UTC day of `at`."""
    midnight = day_of(at)
    update: Document = {
        "$inc": counts,
        "$setOnInsert": {
            "tenantId": tenant_id,
            "instanceName": instance_name,
            "day": midnight,
            "expiresAt": midnight + KEPT,
        },
    }
    if provider is not None:  # an instance's provider never changes; unknown once it is deleted
        update["$set"] = {"channel": channel_of(provider)}
    return {"_id": f"{tenant_id}|{instance_name}|{midnight.date().isoformat()}"}, update


def grouped(store: Store) -> "GroupedCounts":
    """The process's grouped counts on `store`: every count it adds goes through them."""
    return store.grouped(GroupedCounts, store.usage_days)


def count(
    store: Store,
    tenant_id: str,
    instance_name: str,
    provider: str | None,
    what: Counted,
    at: datetime,
    n: int = 1,
) -> None:
    """Add `n` to the instance's count of `what` for the UTC day of `at`."""
    if n > 0:
        grouped(store).add([Added(tenant_id, instance_name, provider, what, at, n)])


def count_message(store: Store, message: Document, what: Counted, at: datetime) -> None:
    """Add one message to its instance's count of `what` for the day of `at`."""
    count_messages(store, [message], what, at)


def count_messages(store: Store, messages: Iterable[Document], what: Counted, at: datetime) -> None:
    """Add each of `messages` to its instance's count of `what` for the day of `at`."""
    grouped(store).add(
        [Added(m["tenantId"], m["instanceName"], m.get("provider"), what, at, 1) for m in messages]
    )


class Added(NamedTuple):
    """What one count adds."""

    tenant_id: str
    instance_name: str
    provider: str | None  # when known
    what: Counted
    at: datetime
    n: int


type Day = tuple[str, str, datetime]  # tenant, instance, UTC midnight


class GroupedCounts:
    """A process's counts, summed in memory per tenant, instance and day and written
    `WRITTEN_EVERY` after the first of them: one upsert per record, in one bulk write (parts
    of `MOST_PER_WRITE`). Adding a count never waits on the store, and a busy process writes
    each day's record about once a second however much it counts. `close` (the store's)
    writes what is left; a process that dies unclean loses at most its last second's counts.
    """

    def __init__(self, usage_days: AsyncCollection[Document]) -> None:
        self._usage_days = usage_days
        self._sums: dict[Day, Counter[str]] = {}
        self._providers: dict[Day, str | None] = {}
        self._timer: asyncio.Task[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()
        self.writes = 0  # round trips made, for the benchmarks and tests

    def add(self, added: list[Added]) -> None:
        """Add `added` to their days' sums, written within `WRITTEN_EVERY`."""
        for one in added:
            day = (one.tenant_id, one.instance_name, day_of(one.at))
            self._sums.setdefault(day, Counter())[one.what.value] += one.n
            self._providers[day] = self._providers.get(day) or one.provider
        if self._sums and (self._timer is None or self._timer.done()):
            # A context of its own: the first caller's log context is not every write's.
            self._timer = asyncio.get_running_loop().create_task(
                self._later(), context=contextvars.Context()
            )

    async def flush(self) -> None:
        """Write the sums so far, and wait for every write under way."""
        self._write_sums()
        await asyncio.gather(*self._writing)

    async def close(self) -> None:
        """Write what is left before the store closes."""
        if self._timer is not None:
            self._timer.cancel()
        await self.flush()

    async def _later(self) -> None:
        await asyncio.sleep(WRITTEN_EVERY.total_seconds())
        self._write_sums()

    def _write_sums(self) -> None:
        """Start writing the sums so far in a task of its own, which nothing cancels."""
        if not self._sums:
            return
        sums, providers = self._sums, self._providers
        self._sums, self._providers = {}, {}
        writing = asyncio.get_running_loop().create_task(
            self._write(sums, providers), context=contextvars.Context()
        )
        self._writing.add(writing)
        writing.add_done_callback(self._writing.discard)

    async def _write(self, sums: dict[Day, Counter[str]], providers: dict[Day, str | None]) -> None:
        for part in in_parts(list(sums.items())):
            self.writes += 1
            updates = [
                UpdateOne(
                    *_upsert(tenant, name, providers[(tenant, name, day)], day, dict(counts)),
                    upsert=True,
                )
                for (tenant, name, day), counts in part
            ]
            try:
                await self._usage_days.bulk_write(updates, ordered=False)
            except PyMongoError as e:
                _lost(
                    e,
                    sorted({what for _, counts in part for what in counts}),
                    sum(counts.total() for _, counts in part),
                )


# A count is written after what it counts happened (a message stored, a status written): a
# store failing at that moment loses the count rather than failing, or repeating, the work.
def _lost(error: PyMongoError, counted: list[str], n: int) -> None:
    log.warning("usage count lost", counted=counted, n=n, error=repr(error))
