"""Usage counts on a real store: a day's record per tenant and instance, and a write the store
refuses losing the count instead of raising into the work it counts."""

import asyncio
from datetime import UTC, datetime, timedelta

from lanegate import usage
from lanegate.store import Store

NOON = datetime(2026, 3, 15, 12, tzinfo=UTC)


async def test_counts_go_to_the_utc_day_of_each_event(bare_store: Store) -> None:
    late = NOON.astimezone(UTC) + timedelta(hours=11, minutes=59)
    await usage.count(bare_store, "t", "i", "smtp", usage.Counted.SENT, NOON)
    await usage.count(bare_store, "t", "i", None, usage.Counted.SENT, late)
    await usage.count(bare_store, "t", "i", None, usage.Counted.SENT, late + timedelta(minutes=2))

    days = await bare_store.usage_days.find({"tenantId": "t"}).sort("day", 1).to_list(None)

    assert [(2, "email"), (1, None)] == [(d["sent"], d.get("channel")) for d in days]
    assert NOON.replace(hour=0) + usage.KEPT == days[0]["expiresAt"]


async def test_a_refused_count_is_lost_without_raising(bare_store: Store) -> None:
    await bare_store.usage_days.insert_one({"_id": "t|i|2026-03-15", "accepted": "not a number"})
    message = {"tenantId": "t", "instanceName": "i", "provider": "sandbox"}

    await usage.count_messages(bare_store, [message], usage.Counted.ACCEPTED, NOON)
    await usage.count_message(bare_store, message, usage.Counted.ACCEPTED, NOON)

    kept = await bare_store.usage_days.find_one({"_id": "t|i|2026-03-15"})
    assert kept is not None and "not a number" == kept["accepted"]


async def test_counts_added_during_a_write_go_together_in_the_next(bare_store: Store) -> None:
    messages = [
        {"tenantId": "t", "instanceName": f"i{n % 3}", "provider": "sandbox"} for n in range(30)
    ]
    before = usage.grouped(bare_store).writes

    await asyncio.gather(
        *(usage.count_message(bare_store, m, usage.Counted.ACCEPTED, NOON) for m in messages),
        usage.count(bare_store, "t", "i0", None, usage.Counted.DELIVERED, NOON, n=4),
    )
    await usage.count_messages(bare_store, messages[:2], usage.Counted.CANCELED, NOON)
    await usage.count_messages(bare_store, [], usage.Counted.CANCELED, NOON)  # nothing to wait on

    days = await bare_store.usage_days.find({"tenantId": "t"}).sort("instanceName", 1).to_list(None)
    assert [("i0", 10, 4, 1), ("i1", 10, None, 1), ("i2", 10, None, None)] == [
        (d["instanceName"], d["accepted"], d.get("delivered"), d.get("canceled")) for d in days
    ]
    # The 31 counts added at once by separate callers share one write: every count a process
    # adds (sends, receipts, webhook outcomes) goes through the store's one grouped writer.
    assert 2 == usage.grouped(bare_store).writes - before
