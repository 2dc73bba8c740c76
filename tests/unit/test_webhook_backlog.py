"""The webhook backlog gauges count, in the store, the open deliveries due now and those
waiting for a retry; finished ones and claimed ones count as neither."""

from datetime import timedelta

from prometheus_client import REGISTRY

from lanegate.events import utcnow
from lanegate.store import Store
from webhook_dispatcher.backlog import export_backlog
from webhook_dispatcher.records import Records


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_backlog_gauges_count_due_and_retrying_deliveries_in_the_store(
    bare_store: Store,
) -> None:
    now = utcnow()
    past, later = now - timedelta(seconds=5), now + timedelta(hours=1)
    await bare_store.webhook_deliveries.insert_many(
        [
            {"_id": "first-attempt-due", "status": "pending", "nextAttemptAt": past},
            {"_id": "claimed-now", "status": "pending", "nextAttemptAt": later},
            {"_id": "retry-due", "status": "retrying", "nextAttemptAt": past},
            {"_id": "retry-later", "status": "retrying", "nextAttemptAt": later},
            {"_id": "retry-later-2", "status": "retrying", "nextAttemptAt": later},
            {"_id": "delivered", "status": "delivered", "nextAttemptAt": None},
            {"_id": "dead", "status": "dead", "nextAttemptAt": None},
        ]
    )
    records = Records(bare_store, lease_seconds=30)

    await export_backlog(records)
    assert 2 == gauge("lanegate_webhook_deliveries_due")
    assert 3 == gauge("lanegate_webhook_deliveries_retrying")

    # The receiver is back: the retries were delivered; the gauges fall with the store.
    await bare_store.webhook_deliveries.update_many(
        {"status": "retrying"}, {"$set": {"status": "delivered", "nextAttemptAt": None}}
    )
    await export_backlog(records)
    assert 1 == gauge("lanegate_webhook_deliveries_due")
    assert 0 == gauge("lanegate_webhook_deliveries_retrying")
