"""Replaying webhook deliveries: reset them due now and tell the dispatcher."""

import structlog

from lanegate.broker import Broker
from lanegate.events import WebhookReplay, utcnow
from lanegate.store import Store

log = structlog.get_logger(__name__)

# The statuses a delivery can be replayed from (an open one being attempted is not).
REPLAYABLE = ["dead", "delivered", "retrying"]


async def reset_deliveries(
    store: Store, broker: Broker, tenant_id: str, instance_name: str, ids: list[str]
) -> int:
    """Make deliveries due now with a fresh retry schedule, then tell the dispatcher; returns
    how many were reset (one being attempted right now is left alone)."""
    if not ids:
        return 0
    now = utcnow()
    result = await store.webhook_deliveries.update_many(
        {"_id": {"$in": ids}, "tenantId": tenant_id, "status": {"$in": REPLAYABLE}, "claim": None},
        {
            "$set": {
                "status": "pending",
                "attemptCount": 0,
                "nextAttemptAt": now,
                "replayedAt": now,
            },
            "$inc": {"replays": 1},
        },
    )
    try:
        await broker.publish(
            WebhookReplay(tenantId=tenant_id, instanceName=instance_name, deliveryIds=ids)
        )
    except Exception as e:
        # The reset records are due in the store: the dispatcher's poller gets them anyway.
        log.warning("replay event not published; the retry poller will pick them up", error=repr(e))
    return int(result.modified_count)
