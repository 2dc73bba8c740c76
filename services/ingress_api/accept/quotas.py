"""Per-tenant quotas: instances, and messages per UTC day and calendar month counted in the
store's `tenant_usage` and taken in blocks (`counter_blocks`), so every ingress replica agrees."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from ingress_api.accept.counter_blocks import Block, BlockCounter, Counter
from ingress_api.auth import Caller
from lanegate.errors import (
    BulkSizeExceeded,
    InstanceQuotaExceeded,
    MessageQuotaExceeded,
    MonthlyMessageQuotaExceeded,
)
from lanegate.service import SETTINGS, STORE
from lanegate.store import Document, Store

# What a month is counted against when the tenant has no monthly limit.
NO_MONTHLY_LIMIT = 10**15
DAY_SECONDS = 86_400  # POSIX time has no leap seconds: windows of a day start at UTC midnight


async def check_instance_quota(request: web.Request, caller: Caller, created: str = "") -> None:
    """403 QUOTA_EXCEEDED when the tenant is over its instance quota; `created` names an
    instance this request just inserted, taken back when the count shows it went over (two
    racing creates cannot both slip past the limit)."""
    limit = caller.max_instances
    if limit is None:
        limit = request.app[SETTINGS].tenant_max_instances
    store = request.app[STORE]
    count = await store.instances.count_documents({"tenantId": caller.tenant_id})
    if count <= limit - (0 if created else 1):
        return
    if created:
        await store.instances.delete_one({"_id": created, "tenantId": caller.tenant_id})
    raise InstanceQuotaExceeded(
        f"Instance quota reached: tenant {caller.tenant_id} may have {limit} instances"
    )


def _day_counter(tenant_id: str, window: int) -> tuple[str, Document]:
    start = datetime.fromtimestamp(window * DAY_SECONDS, UTC)
    day = start.date().isoformat()
    # Kept a day past its own, then dropped by the TTL index.
    fields = {"tenantId": tenant_id, "day": day, "expiresAt": start + timedelta(days=2)}
    return f"{tenant_id}:{day}", fields


def _month_start(window: int) -> datetime:
    """The first moment of a month numbered as months since year 0."""
    return datetime(window // 12, window % 12 + 1, 1, tzinfo=UTC)


def _month_counter(tenant_id: str, window: int) -> tuple[str, Document]:
    month = _month_start(window).strftime("%Y-%m")
    # Kept a month past its own, then dropped by the TTL index.
    fields = {"tenantId": tenant_id, "month": month, "expiresAt": _month_start(window + 2)}
    return f"{tenant_id}:{month}", fields


@dataclass(frozen=True)
class Reservation:
    """Messages counted against one tenant's day; given back when they are not queued."""

    counter: "MessageCounter"
    tenant_id: str
    block: Block
    count: int

    async def release(self, store: Store, count: int | None = None) -> None:
        """Give the messages (or `count` of them) back for later sends: their accept failed
        (beyond a block, to the store; a block whose day ended drops them)."""
        given = self.count if count is None else min(count, self.count)
        await self.counter.give_back(store, self.tenant_id, self.block, given)


@dataclass(frozen=True)
class Reservations:
    """Messages counted against each of a tenant's periods: its day and its month."""

    held: tuple[Reservation, ...]

    async def release(self, store: Store, count: int | None = None) -> None:
        """Give the messages (or `count` of them) back in every period."""
        for reservation in self.held:
            await reservation.release(store, count)


# Most sends cost no round trip, and a bulk send takes all its messages or none. What a
# replica reserved and did not use (messages given back stay with it) makes the others stop a
# little early, and the stored count can be ahead of the messages accepted by up to one and a
# half blocks per replica.
class MessageCounter(BlockCounter):
    """Counts each tenant's messages per UTC day from blocks reserved in the store."""

    over: type[MessageQuotaExceeded] = MessageQuotaExceeded
    period = "Daily"

    def __init__(self, counter: Counter = _day_counter) -> None:
        super().__init__("tenant_usage", DAY_SECONDS, counter)

    async def reserve(
        self, store: Store, tenant_id: str, limit: int, count: int, now: float
    ) -> Reservation:
        """Count `count` messages against the tenant's period of `now`, all or none: 429
        QUOTA_EXCEEDED with `Retry-After` (seconds to the period's end) when they do not all
        fit, taking nothing."""
        taken = await self.take(store, tenant_id, limit, count, now)
        if taken.ok:
            return Reservation(self, tenant_id, taken.block, count)
        rollover = datetime.fromtimestamp(taken.ends, UTC)
        raise self.over(
            f"{self.period} message quota of {limit} reached for tenant {tenant_id}"
            f" ({count} more would not fit); it resets at {rollover.isoformat()}",
            headers={"Retry-After": str(max(1, int(taken.ends - now) + 1))},
        )


class MonthCounter(MessageCounter):
    """Counts each tenant's messages per UTC calendar month."""

    over = MonthlyMessageQuotaExceeded
    period = "Monthly"

    def __init__(self) -> None:
        super().__init__(_month_counter)

    def window_of(self, now: float) -> int:
        moment = datetime.fromtimestamp(now, UTC)
        return moment.year * 12 + moment.month - 1

    def window_start(self, window: int) -> int:
        return int(_month_start(window).timestamp())


MESSAGE_COUNTER = web.AppKey("message_counter", MessageCounter)
MONTH_COUNTER = web.AppKey("month_counter", MonthCounter)


async def reserve_messages(request: web.Request, caller: Caller, count: int) -> Reservations:
    """Count `count` messages against the caller's tenant's day and month, all or none (see
    `MessageCounter.reserve`). The month is counted for tenants without a monthly limit too,
    so one set mid-month holds what the month already sent."""
    store, now = request.app[STORE], time.time()
    limit = caller.max_messages_per_day
    if limit is None:
        limit = request.app[SETTINGS].tenant_max_messages_per_day
    day = await request.app[MESSAGE_COUNTER].reserve(store, caller.tenant_id, limit, count, now)
    monthly = caller.max_messages_per_month
    try:
        month = await request.app[MONTH_COUNTER].reserve(
            store, caller.tenant_id, NO_MONTHLY_LIMIT if monthly is None else monthly, count, now
        )
    except BaseException:
        await day.release(store)
        raise
    return Reservations((day, month))


def refuse_over_bulk_size(caller: Caller, size: int) -> None:
    """403 QUOTA_EXCEEDED (`maxBulkSize`) when one bulk send holds more than the tenant may."""
    if caller.max_bulk_size is not None and size > caller.max_bulk_size:
        raise BulkSizeExceeded(
            f"A bulk send may hold {caller.max_bulk_size} messages for tenant {caller.tenant_id}"
            f" ({size} sent)"
        )
