"""The scheduler's fenced pacing records on a real store: a reserve applies only under the
owner's epoch, and reserves made at once share a write yet each hears its own outcome."""

import asyncio

from lane_scheduler.ledger import Ledger
from lanegate.lanes import Usage
from lanegate.store import Store
from lanegate.store.grouped import grouped_updates


async def test_reserves_apply_only_under_their_epoch_and_share_writes(bare_store: Store) -> None:
    ledger = Ledger(bare_store)
    for name in ("a", "b", "c"):
        assert await ledger.ensure(name, 2)
    assert not await ledger.ensure("c", 1)  # a newer owner stamped it
    before = grouped_updates(bare_store.lane_state).writes

    held = await asyncio.gather(
        ledger.reserve("a", 2, Usage(), 10.0, "m1"),
        ledger.reserve("b", 1, Usage(), 10.0, "m2"),  # fenced out: b carries epoch 2
        ledger.reserve("c", 2, Usage(), 10.0, "m3"),
        ledger.reserve("a", 2, Usage(), 11.0, "m4"),  # the same record: the next write
    )

    assert (True, False, True, True) == tuple(held)
    assert 2 == grouped_updates(bare_store.lane_state).writes - before
    records = await ledger.records(
        [r["shard"] for r in await bare_store.lane_state.find().to_list()]
    )
    assert {"a": "m4", "b": None, "c": "m3"} == {
        name: record.get("lastMessageId") for name, record in records.items()
    }
