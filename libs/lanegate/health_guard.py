"""Holding a number to its health: while its score is under `health.minScore` a flag stored on
the instance reduces its normal and bulk day caps (the lane scheduler reads it with the rest
of its pacing); the flag is judged again each time the number's health counts change."""

from datetime import datetime
from typing import Any

from lanegate import health
from lanegate.broker import Broker
from lanegate.events import InstanceConfigured, InstanceHealth
from lanegate.lanes import RESTRICTED_DAY_CAP_FACTOR, health_restricted
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

DEFAULT_MIN_SCORE = 40


def min_score(instance: Document) -> int:
    """The score under which the instance's day caps are reduced (its own, or the default)."""
    stored = instance.get("health")
    value = stored.get("minScore") if isinstance(stored, dict) else None
    return value if isinstance(value, int) else DEFAULT_MIN_SCORE


def health_view(instance: Document) -> dict[str, Any]:
    """The instance's health settings and flag, as the API shows them."""
    stored = instance.get("health")
    stored = stored if isinstance(stored, dict) else {}
    return {
        "minScore": min_score(instance),
        "restricted": health_restricted(instance),
        "since": iso_utc(stored.get("since")),
        "score": stored.get("score"),
        "dayCapFactor": RESTRICTED_DAY_CAP_FACTOR,
    }


async def judge(store: Store, broker: Broker, instance_name: str, now: datetime) -> bool:
    """Set or clear the instance's `health.restricted` flag when its score and its minScore
    disagree with it, then tell its scheduler (`instance.configured`) and its tenant
    (`instance.health`); True when the flag changed here."""
    instance = await store.instances.find_one({"_id": instance_name}, {"tenantId": 1, "health": 1})
    if instance is None:
        return False
    totals = await health.totals(store, instance_name, now)
    score = health.score(totals)
    floor = min_score(instance)
    restrict = score < floor
    if restrict == health_restricted(instance):
        return False
    # Conditional on the flag as read: of two senders judging at once, one flips and tells.
    was: Any = {"$ne": True} if restrict else True
    flipped = await store.instances.update_one(
        {"_id": instance_name, "health.restricted": was},
        {"$set": {"health.restricted": restrict, "health.since": now, "health.score": score}},
    )
    if flipped.modified_count == 0:
        return False
    view = health.view(totals)
    try:
        await _tell(broker, instance, restrict, score, floor, view)
    except Exception:
        # Untold, the change is taken back, so the next count judges and tells again.
        stored = instance.get("health")
        before: Document = stored if isinstance(stored, dict) else {}
        await store.instances.update_one(
            {"_id": instance_name, "health.restricted": restrict, "health.since": now},
            {
                "$set": {
                    "health.restricted": not restrict,
                    "health.since": before.get("since"),
                    "health.score": before.get("score"),
                }
            },
        )
        raise
    return True


async def _tell(
    broker: Broker,
    instance: Document,
    restrict: bool,
    score: int,
    floor: int,
    view: dict[str, Any],
) -> None:
    """Tell the instance's scheduler to read its caps again and its tenant why."""
    instance_name = instance["_id"]
    await broker.publish_many(
        [
            InstanceConfigured(tenantId=instance["tenantId"], instanceName=instance_name),
            InstanceHealth(
                tenantId=instance["tenantId"],
                instanceName=instance_name,
                restricted=restrict,
                score=score,
                minScore=floor,
                dayCapFactor=RESTRICTED_DAY_CAP_FACTOR,
                health={k: v for k, v in view.items() if k != "score"},
            ),
        ]
    )


async def counted(
    store: Store,
    broker: Broker,
    tenant_id: str,
    instance_name: str,
    what: health.Counted,
    at: datetime,
) -> None:
    """Count one `what` for the instance and judge its flag against the new score."""
    await health.count(store, tenant_id, instance_name, what, at)
    await judge(store, broker, instance_name, at)
