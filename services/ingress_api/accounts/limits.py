"""A tenant's limits: its own overrides win over its plan's; what neither sets is the gateway's."""

from typing import Any

from lanegate.errors import InvalidInput
from lanegate.store import Document, Store

# The limits a plan holds and a tenant may override, by their API names.
LIMIT_FIELDS = (
    "maxInstances",
    "maxMessagesPerDay",
    "maxMessagesPerMonth",
    "requestsPerMinute",
    "maxBulkSize",
    "maxAttachmentBytes",
    "otpSendsPerHour",
    "otpMaxLiveCodes",
)


def attachment_max_bytes(own: int | None, gateway: int) -> int:
    """The largest file a tenant may attach: its limit in force, never above the gateway's."""
    return gateway if own is None else min(own, gateway)


def limits_in_force(tenant: Document, plan: Document | None) -> dict[str, int | None]:
    """Each limit from the tenant's own value, else its plan's; None where neither sets one."""
    chosen: dict[str, Any] = {}
    for field in LIMIT_FIELDS:
        own = tenant.get(field)
        chosen[field] = own if own is not None else (plan or {}).get(field)
    return chosen


async def tenant_plan(store: Store, tenant: Document) -> Document | None:
    """The plan the tenant is on, or None (no plan, or a plan since deleted)."""
    plan_id = tenant.get("planId")
    return None if plan_id is None else await store.plans.find_one({"_id": plan_id})


async def refuse_unknown_plan(store: Store, plan_id: str | None) -> None:
    """400 on `planId` when it names no plan."""
    if plan_id is not None and await store.plans.find_one({"_id": plan_id}, {"_id": 1}) is None:
        raise InvalidInput([(["planId"], f"No plan {plan_id}")])
