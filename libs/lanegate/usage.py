"""A tenant's usage, counted as it happens: one record per tenant, instance and UTC day, each
event adding to one of its counts (an upsert), so that reading usage never scans messages."""

import asyncio
import weakref
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from lanegate.health import day_of
from lanegate.providers.capabilities import channel_of
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)

# Days older than this may be swept (their record's `expiresAt`).
KEPT = timedelta(days=400)


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


# One per store: every count a process adds goes through it.
_GROUPED: "weakref.WeakKeyDictionary[Store, GroupedCounts]" = weakref.WeakKeyDictionary()


def grouped(store: Store) -> "GroupedCounts":
    """The grouped counts of `store`, made on first use."""
    counts = _GROUPED.get(store)
    if counts is None:
        counts = _GROUPED[store] = GroupedCounts(store)
    return counts


async def count(
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
        await grouped(store).add([(tenant_id, instance_name, provider, what, at, n)])


async def count_message(store: Store, message: Document, what: Counted, at: datetime) -> None:
    """Add one message to its instance's count of `what` for the day of `at`."""
    await count_messages(store, [message], what, at)


async def count_messages(
    store: Store, messages: Iterable[Document], what: Counted, at: datetime
) -> None:
    """Add each of `messages` to its instance's count of `what` for the day of `at`."""
    await grouped(store).add(
        [(m["tenantId"], m["instanceName"], m.get("provider"), what, at, 1) for m in messages]
    )


# What one count adds: tenant, instance, provider (if known), what, when, how many.
type Added = tuple[str, str, str | None, Counted, datetime, int]


async def _write(store: Store, counted: list[Added]) -> None:
    """One bulk write adding up `counted`: one upsert per tenant, instance and day."""
    sums: dict[tuple[str, str, datetime], Counter[str]] = {}
    providers: dict[tuple[str, str, datetime], str | None] = {}
    for tenant, name, provider, what, at, n in counted:
        key = (tenant, name, day_of(at))
        sums.setdefault(key, Counter())[what.value] += n
        providers[key] = providers.get(key) or provider
    updates = [
        UpdateOne(
            *_upsert(tenant, name, providers[(tenant, name, day)], day, dict(counts)), upsert=True
        )
        for (tenant, name, day), counts in sums.items()
    ]
    if updates:
        try:
            await store.usage_days.bulk_write(updates, ordered=False)
        except PyMongoError as e:
            _lost(e, sorted({added[3].value for added in counted}), sum(a[5] for a in counted))


class GroupedCounts:
    """Counts added while a write is under way go together in the next one (one bulk write),
    as single sends' inserts do; each caller returns once its counts are written (or lost)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[Added] = []
        self._next: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # round trips made, for the tests

    async def add(self, added: list[Added]) -> None:
        """Add `added` to their days' records."""
        if not added:
            return
        self._pending.extend(added)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        written = self._next
        if self._writer is None:
            # A task of its own: the caller that started it going away does not cut it off.
            self._writer = asyncio.ensure_future(self._drain())
        await asyncio.shield(written)

    async def _drain(self) -> None:
        try:
            while self._pending and self._next is not None:
                batch, self._pending = self._pending, []
                done, self._next = self._next, None
                self.writes += 1
                try:
                    await _write(self._store, batch)
                except BaseException as e:
                    done.set_exception(e)
                    raise
                done.set_result(None)
        finally:
            self._writer = None


# A count is written after what it counts happened (a message stored, a status written): a
# store failing at that moment loses the count rather than failing, or repeating, the work.
def _lost(error: PyMongoError, counted: list[str], n: int) -> None:
    log.warning("usage count lost", counted=counted, n=n, error=repr(error))
