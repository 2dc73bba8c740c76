"""A tenant's usage, counted as it happens: one record per tenant, instance and UTC day, each
event adding to one of its counts (an upsert), so that reading usage never scans messages."""

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
from lanegate.store import Document, Store
from lanegate.store.grouped import Batched

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


def grouped(store: Store) -> "GroupedCounts":
    """The process's grouped counts on `store`: every count it adds goes through them."""
    return store.grouped(GroupedCounts, store.usage_days)


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
        await grouped(store).add([Added(tenant_id, instance_name, provider, what, at, n)])


async def count_message(store: Store, message: Document, what: Counted, at: datetime) -> None:
    """Add one message to its instance's count of `what` for the day of `at`."""
    await count_messages(store, [message], what, at)


async def count_messages(
    store: Store, messages: Iterable[Document], what: Counted, at: datetime
) -> None:
    """Add each of `messages` to its instance's count of `what` for the day of `at`."""
    await grouped(store).add(
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


class GroupedCounts:
    """Counts added while a write is under way go together in the next one: one bulk write,
    one upsert per tenant, instance and day; each caller returns once its counts are written
    (or lost)."""

    def __init__(self, usage_days: AsyncCollection[Document]) -> None:
        self._usage_days = usage_days
        self._batched: Batched[Added, None] = Batched(self._write, keep_gone=True)

    @property
    def writes(self) -> int:
        return self._batched.writes

    async def add(self, added: list[Added]) -> None:
        """Add `added` to their days' records."""
        await self._batched.add(added)

    async def _write(self, counted: list[Added]) -> list[Exception | None]:
        sums: dict[tuple[str, str, datetime], Counter[str]] = {}
        providers: dict[tuple[str, str, datetime], str | None] = {}
        for added in counted:
            key = (added.tenant_id, added.instance_name, day_of(added.at))
            sums.setdefault(key, Counter())[added.what.value] += added.n
            providers[key] = providers.get(key) or added.provider
        updates = [
            UpdateOne(
                *_upsert(tenant, name, providers[(tenant, name, day)], day, dict(counts)),
                upsert=True,
            )
            for (tenant, name, day), counts in sums.items()
        ]
        try:
            await self._usage_days.bulk_write(updates, ordered=False)
        except PyMongoError as e:
            _lost(e, sorted({added.what.value for added in counted}), sum(a.n for a in counted))
        return [None] * len(counted)


# A count is written after what it counts happened (a message stored, a status written): a
# store failing at that moment loses the count rather than failing, or repeating, the work.
def _lost(error: PyMongoError, counted: list[str], n: int) -> None:
    log.warning("usage count lost", counted=counted, n=n, error=repr(error))
