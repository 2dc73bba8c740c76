"""Per-tenant quotas: instances, and messages per UTC day, counted in the store.

The day's count is one document per tenant and day, raised with a conditional
increment that only matches while the new total stays within the quota, so
every ingress replica agrees and a bulk send takes all its messages or none.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from ingress_api.auth import Caller
from lanegate.errors import InstanceQuotaExceeded, MessageQuotaExceeded
from lanegate.events import utcnow
from lanegate.service import SETTINGS, STORE
from lanegate.store import Store


async def check_instance_quota(request: web.Request, who: Caller, created: str = "") -> None:
    """403 QUOTA_EXCEEDED when the tenant is over its instance quota; `created` names an
    instance this request just inserted, taken back when the count shows it went over (two
    racing creates cannot both slip past the limit)."""
    limit = who.max_instances
    if limit is None:
        limit = request.app[SETTINGS].tenant_max_instances
    store = request.app[STORE]
    count = await store.instances.count_documents({"tenantId": who.tenant_id})
    if count <= limit - (0 if created else 1):
        return
    if created:
        await store.instances.delete_one({"_id": created, "tenantId": who.tenant_id})
    raise InstanceQuotaExceeded(
        f"Instance quota reached: tenant {who.tenant_id} may have {limit} instances"
    )


@dataclass(frozen=True)
class Reservation:
    """Messages counted against one tenant's day; given back when they are not queued."""

    counter: str
    count: int

    async def release(self, store: Store, count: int | None = None) -> None:
        """Take the messages (or `count` of them) back off the day's count: their accept
        failed."""
        count = self.count if count is None else count
        if count:
            await store.tenant_usage.update_one({"_id": self.counter}, {"$inc": {"count": -count}})


def _day(now: datetime) -> tuple[str, datetime]:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start.date().isoformat(), start + timedelta(days=1)


async def reserve_messages(request: web.Request, who: Caller, count: int) -> Reservation:
    """Count `count` messages against the tenant's day, all or none: 429 QUOTA_EXCEEDED with
    `Retry-After` (seconds to the next UTC midnight) when they do not all fit."""
    limit = who.max_messages_per_day
    if limit is None:
        limit = request.app[SETTINGS].tenant_max_messages_per_day
    now = utcnow()
    day, rollover = _day(now)
    counter = f"{who.tenant_id}:{day}"
    usage = request.app[STORE].tenant_usage
    if count <= limit:
        fits = {"_id": counter, "count": {"$lte": limit - count}}
        raise_count = {"$inc": {"count": count}}
        if await usage.find_one_and_update(fits, raise_count, return_document=ReturnDocument.AFTER):
            return Reservation(counter, count)
        try:
            await usage.insert_one(
                {
                    "_id": counter,
                    "tenantId": who.tenant_id,
                    "day": day,
                    "count": count,
                    # Kept a day past its own, then dropped by the TTL index.
                    "expiresAt": rollover + timedelta(days=1),
                }
            )
            return Reservation(counter, count)
        except DuplicateKeyError:
            pass  # it exists (or another request just made it): the conditional path decides
        if await usage.find_one_and_update(fits, raise_count, return_document=ReturnDocument.AFTER):
            return Reservation(counter, count)
    wait = max(1, int((rollover - now).total_seconds()) + 1)
    raise MessageQuotaExceeded(
        f"Daily message quota of {limit} reached for tenant {who.tenant_id}"
        f" ({count} more would not fit); it resets at {rollover.isoformat()}",
        headers={"Retry-After": str(wait)},
    )
