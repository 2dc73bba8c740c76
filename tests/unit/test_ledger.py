"""The scheduler's fenced pacing records on a real store: a reserve applies only under the
owner's epoch, and reserves made at once share a write yet each hears its own outcome."""

import asyncio

from lane_scheduler.ledger import Ledger
from lane_scheduler.ownership import shard_of
from lanegate.lanes import Usage
from lanegate.store import Store
from lanegate.store.grouped import grouped_updates


async def test_reserves_apply_only_under_their_epoch_and_share_writes(bare_store: Store) -> None:
    ledger = Ledger(bare_store)
    for name in ("a", "b", "c"):
        assert await ledger.ensure(name, 2)
    assert not await ledger.ensure("c", 1)  # a newer owner stamped it
    before = grouped_updates(bare_store, bare_store.lane_state).writes

    held = await asyncio.gather(
        ledger.reserve("a", 2, Usage(), 10.0, "m1"),
        ledger.reserve("b", 1, Usage(), 10.0, "m2"),  # fenced out: b carries epoch 2
        ledger.reserve("c", 2, Usage(), 10.0, "m3"),
        ledger.reserve("a", 2, Usage(), 11.0, "m4"),  # the same record: the next write
    )

    assert (True, False, True, True) == tuple(held)
    assert 2 == grouped_updates(bare_store, bare_store.lane_state).writes - before
    records = await ledger.records(
        [r["shard"] for r in await bare_store.lane_state.find().to_list()]
    )
    assert {"a": "m4", "b": None, "c": "m3"} == {
        name: record.get("lastMessageId") for name, record in records.items()
    }


async def test_a_message_reserved_again_after_a_new_owner_stamped_the_shard_is_fenced_out(
    bare_store: Store,
) -> None:
    ledger = Ledger(bare_store)
    for name in ("a", "b"):
        assert await ledger.ensure(name, 1)
    assert await ledger.reserve("a", 1, Usage(), 10.0, "m1")
    await ledger.stamp({shard_of("a"): 2})  # a new owner took the shard, reserving nothing yet

    # m1 came back (handed back, planned again) and is reserved again under the old epoch,
    # beside another instance's reserve that applies: the record still names m1.
    again, other = await asyncio.gather(
        ledger.reserve("a", 1, Usage(), 20.0, "m1"), ledger.reserve("b", 1, Usage(), 20.0, "m2")
    )

    assert shard_of("a") != shard_of("b")
    assert (False, True) == (again, other)
    assert 10.0 == (await ledger.record("a") or {}).get("lastDispatchAt")
