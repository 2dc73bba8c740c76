"""A tenant's usage, counted as it happens: one record per tenant, instance and UTC day, each
event adding to one of its counts (an upsert), so that reading usage never scans messages."""

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


async def count(
    store: Store,
    tenant_id: str,
    instance_name: str,
    provider: str | None,
    what: Counted,
    at: datetime,
    n: int = 1,
) -> None:
    """Add `n` to the instance's count of `what` for the UTC day of `at` (one upsert)."""
    if n <= 0:
        return
    where, update = _upsert(tenant_id, instance_name, provider, at, {what.value: n})
    try:
        await store.usage_days.update_one(where, update, upsert=True)
    except PyMongoError as e:
        _lost(e, what, n)


async def count_message(store: Store, message: Document, what: Counted, at: datetime) -> None:
    """Add one message to its instance's count of `what` for the day of `at`."""
    await count(
        store, message["tenantId"], message["instanceName"], message.get("provider"), what, at
    )


async def count_messages(
    store: Store, messages: Iterable[Document], what: Counted, at: datetime
) -> None:
    """Add each of `messages` to its instance's count of `what` for the day of `at`: one write
    for all, one upsert per instance."""
    grouped = Counter((m["tenantId"], m["instanceName"], m.get("provider")) for m in messages)
    updates = [
        UpdateOne(*_upsert(tenant, instance, provider, at, {what.value: n}), upsert=True)
        for (tenant, instance, provider), n in grouped.items()
    ]
    if updates:
        try:
            await store.usage_days.bulk_write(updates, ordered=False)
        except PyMongoError as e:
            _lost(e, what, sum(grouped.values()))


# A count is written after what it counts happened (a message stored, a status written): a
# store failing at that moment loses the count rather than failing, or repeating, the work.
def _lost(error: PyMongoError, what: Counted, n: int) -> None:
    log.warning("usage count lost", counted=what.value, n=n, error=repr(error))
