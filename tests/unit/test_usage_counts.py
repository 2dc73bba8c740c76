"""Usage counts on a real store: a day's record per tenant and instance, the counts of a second
summed into one write, what a process holds written when its store closes, and a write the
store refuses losing the count instead of raising into the work it counts."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from lanegate import usage
from lanegate.store import Document, Store
from tests.support.gateway import eventually

NOON = datetime(2026, 3, 15, 12, tzinfo=UTC)
MESSAGE = {"tenantId": "t", "instanceName": "i", "provider": "sandbox"}


async def test_counts_go_to_the_utc_day_of_each_event(bare_store: Store) -> None:
    late = NOON.astimezone(UTC) + timedelta(hours=11, minutes=59)
    usage.count(bare_store, "t", "i", "smtp", usage.Counted.SENT, NOON)
    usage.count(bare_store, "t", "i", None, usage.Counted.SENT, late)
    usage.count(bare_store, "t", "i", None, usage.Counted.SENT, late + timedelta(minutes=2))
    await usage.grouped(bare_store).write_held()

    days = await bare_store.usage_days.find({"tenantId": "t"}).sort("day", 1).to_list(None)

    assert [(2, "email"), (1, None)] == [(d["sent"], d.get("channel")) for d in days]
    assert NOON.replace(hour=0) + usage.KEPT == days[0]["expiresAt"]


async def test_a_refused_count_is_lost_without_raising(bare_store: Store) -> None:
    await bare_store.usage_days.insert_one({"_id": "t|i|2026-03-15", "accepted": "not a number"})

    usage.count_messages(bare_store, [MESSAGE], usage.Counted.ACCEPTED, NOON)
    usage.count_message(bare_store, MESSAGE, usage.Counted.ACCEPTED, NOON)
    await usage.grouped(bare_store).write_held()

    kept = await bare_store.usage_days.find_one({"_id": "t|i|2026-03-15"})
    assert kept is not None and "not a number" == kept["accepted"]


async def test_the_counts_of_a_second_go_together_in_one_write(bare_store: Store) -> None:
    counts = usage.grouped(bare_store)
    messages = [{**MESSAGE, "instanceName": f"i{n % 3}"} for n in range(30)]
    before = counts.writes

    for message in messages:
        usage.count_message(bare_store, message, usage.Counted.ACCEPTED, NOON)
    usage.count(bare_store, "t", "i0", None, usage.Counted.DELIVERED, NOON, n=4)
    usage.count_messages(bare_store, messages[:2], usage.Counted.CANCELED, NOON)
    usage.count_messages(bare_store, [], usage.Counted.CANCELED, NOON)
    usage.count(bare_store, "t", "i0", None, usage.Counted.READ, NOON, n=0)

    assert before == counts.writes  # adding never waits on the store
    found = bare_store.usage_days.find({"tenantId": "t"}).sort("instanceName", 1)

    async def written() -> bool:  # by the timer: nothing here flushes
        return 3 == await bare_store.usage_days.count_documents({"tenantId": "t"})

    await eventually(written, timeout=10)
    days = await found.to_list(None)
    assert [("i0", 10, 4, 1), ("i1", 10, None, 1), ("i2", 10, None, None)] == [
        (d["instanceName"], d["accepted"], d.get("delivered"), d.get("canceled")) for d in days
    ]
    assert all("read" not in d for d in days)
    # The 33 counts of three records, added by separate callers, share one write.
    assert before + 1 == counts.writes


async def test_closing_the_store_writes_the_counts_it_holds(
    bare_store: Store, store_alone: str
) -> None:
    closing = Store(store_alone, bare_store.db.name)
    usage.count(closing, "t", "i", None, usage.Counted.SENT, NOON, n=3)

    await closing.close()

    day = await bare_store.usage_days.find_one({"_id": "t|i|2026-03-15"})
    assert day is not None and 3 == day["sent"]


class SlowStore:
    """`usage_days` behind a store that takes a while to answer, or first fails as FerretDB
    can (a malformed answer PyMongo raises KeyError on); it notes how many writes overlap."""

    def __init__(self, collection: AsyncCollection[Document], *, fail_first: bool = False) -> None:
        self._collection = collection
        self._fail_next = fail_first
        self.under_way = self.most_at_once = 0

    async def bulk_write(self, updates: list[UpdateOne], *, ordered: bool) -> object:
        self.under_way += 1
        self.most_at_once = max(self.most_at_once, self.under_way)
        try:
            await asyncio.sleep(0.2)
            if self._fail_next:
                self._fail_next = False
                raise KeyError("writeErrors")
            return await self._collection.bulk_write(updates, ordered=ordered)
        finally:
            self.under_way -= 1


def _grouped(store: SlowStore) -> usage.GroupedCounts:
    return usage.GroupedCounts(cast(AsyncCollection[Document], store))


async def test_counts_added_while_a_write_is_under_way_wait_for_the_next(bare_store: Store) -> None:
    slow = SlowStore(bare_store.usage_days)
    counts = _grouped(slow)
    counts.add([usage.Added("t", "i", None, usage.Counted.SENT, NOON, 1)])
    await eventually(lambda: _true(slow.under_way == 1), timeout=10)

    counts.add([usage.Added("t", "i", None, usage.Counted.SENT, NOON, 2)])
    counts.add([usage.Added("t", "j", None, usage.Counted.READ, NOON, 1)])
    await counts.write_held()

    assert (1, 0, 2) == (slow.most_at_once, slow.under_way, counts.writes)
    days = await bare_store.usage_days.find({}, {"_id": 1, "sent": 1, "read": 1}).to_list(None)
    assert [{"_id": "t|i|2026-03-15", "sent": 3}, {"_id": "t|j|2026-03-15", "read": 1}] == sorted(
        days, key=lambda d: d["_id"]
    )


async def test_a_write_that_fails_otherwise_loses_its_counts_and_not_the_next(
    bare_store: Store,
) -> None:
    slow = SlowStore(bare_store.usage_days, fail_first=True)
    counts = _grouped(slow)

    counts.add([usage.Added("t", "i", None, usage.Counted.SENT, NOON, 1)])
    await counts.write_held()
    counts.add([usage.Added("t", "i", None, usage.Counted.SENT, NOON, 5)])
    await counts.write_held()

    day = await bare_store.usage_days.find_one({"_id": "t|i|2026-03-15"})
    assert day is not None and 5 == day["sent"]


async def _true(value: bool) -> bool:
    return value
