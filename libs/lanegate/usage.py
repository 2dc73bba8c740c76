"""A tenant's usage, counted as it happens: one record per tenant, instance and UTC day, the
events of each second adding to its counts (an upsert), so that reading usage never scans
messages."""

import asyncio
import contextlib
import contextvars
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

import structlog
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

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


@dataclass
class Held:
    """A day's record's counts not yet written, and its instance's provider when known."""

    counts: Counter[str] = field(default_factory=Counter)
    provider: str | None = None


class GroupedCounts:
    """A process's counts, summed in memory per tenant, instance and day and written
    `WRITTEN_EVERY` after the first of them: one upsert per record, in one bulk write (parts
    of `MOST_PER_WRITE`), one write at a time (what is counted meanwhile waits for the next).
    Adding a count never waits on the store, and a busy process writes each day's record
    about once a second however much it counts. The store's `close` writes what is held; a
    process that dies unclean loses what it counted in its last second or so.
    """

    def __init__(self, usage_days: AsyncCollection[Document]) -> None:
        self._usage_days = usage_days
        self._held: dict[Day, Held] = {}
        self._writer: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # set while a caller waits for everything held
        self._waiting = 0  # such callers
        self.writes = 0  # round trips made, for the benchmarks and tests

    def add(self, added: list[Added]) -> None:
        """Add `added` to their days' sums, written within about `WRITTEN_EVERY`."""
        for one in added:
            held = self._held.setdefault((one.tenant_id, one.instance_name, day_of(one.at)), Held())
            held.counts[one.what.value] += one.n
            held.provider = held.provider or one.provider
        if self._held and (self._writer is None or self._writer.done()):
            # A context of its own: the first caller's log context is not every write's.
            self._writer = asyncio.get_running_loop().create_task(
                self._write_while_counted(), context=contextvars.Context()
            )

    async def write_held(self) -> None:
        """Write every count held, without waiting out the second; returns once they and
        those added meanwhile are written (or lost). Being cancelled cuts no write off."""
        self._waiting += 1
        self._now.set()
        try:
            while (writer := self._writer) is not None and not writer.done():
                await asyncio.shield(writer)
        finally:
            self._waiting -= 1
            if not self._waiting:
                self._now.clear()

    async def _write_while_counted(self) -> None:
        while self._held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), WRITTEN_EVERY.total_seconds())
            held, self._held = self._held, {}
            await self._write(held)

    async def _write(self, held: dict[Day, Held]) -> None:
        for part in in_parts(list(held.items())):
            self.writes += 1
            updates = [
                UpdateOne(
                    *_upsert(tenant, name, sums.provider, day, dict(sums.counts)), upsert=True
                )
                for (tenant, name, day), sums in part
            ]
            try:
                await self._usage_days.bulk_write(updates, ordered=False)
            except BulkWriteError as e:
                refused = [error["index"] for error in e.details.get("writeErrors", [])]
                _lost(e, [part[index] for index in refused] if refused else part)
            except Exception as e:  # a count never fails what it counts
                _lost(e, part)


# A count is written after what it counts happened (a message stored, a status written): a
# store failing at that moment loses the count rather than failing, or repeating, the work.
def _lost(error: Exception, days: Sequence[tuple[Day, Held]]) -> None:
    log.warning(
        "usage count lost",
        counted=sorted({what for _, held in days for what in held.counts}),
        n=sum(held.counts.total() for _, held in days),
        error=repr(error),
    )
