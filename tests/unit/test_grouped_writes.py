"""Writes made at once share one bulk write, and each caller still hears its own outcome
(whether its conditional update applied, the error of its refused write): on a real store,
and, for the batching itself, on a write of the test's own."""

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from pymongo import UpdateOne
from pymongo.errors import AutoReconnect, WriteError
from pymongo.results import UpdateResult

from lanegate.store import MOST_PER_WRITE, Store, update_in_parts
from lanegate.store.grouped import Batched, GroupedUpdates, grouped_updates, grouped_writes

DONE = {"$set": {"state": "done"}}


def by(job: dict[str, object] | None) -> object:
    """The stamp an update left on a job."""
    return (job or {}).get("by")


async def test_updates_made_at_once_share_a_write_and_each_hears_its_own_outcome(
    bare_store: Store,
) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(10)])
    updates = GroupedUpdates(jobs)

    # Two callers race for job 0; jobs 8 and 9 are not open; job 42 does not exist.
    asked = [0, 0, *range(1, 10), 42]
    await jobs.update_many({"_id": {"$in": [8, 9]}}, DONE)
    outcomes = await asyncio.gather(
        *(updates.update({"_id": n, "state": "open"}, DONE, token="by") for n in asked)
    )

    assert [True, False, *[True] * 7, False, False, False] == outcomes
    # The eleven made at once went together and were read back (8 of 11 applied); the second
    # update of job 0 waited for the next write, so updates of one document keep their order.
    assert (2, 1) == (updates.writes, updates.reads)
    assert 8 == len({by(job) async for job in jobs.find({"state": "done", "_id": {"$lt": 8}})})


async def test_nothing_is_read_back_when_every_update_or_none_applied(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(5)])
    updates = GroupedUpdates(jobs)

    def run() -> Awaitable[list[bool]]:
        where = [{"_id": n, "state": "open"} for n in range(5)]
        return asyncio.gather(*(updates.update(w, DONE, token="by") for w in where))

    assert [True] * 5 == await run()
    assert [False] * 5 == await run()  # all done now
    assert (2, 0) == (updates.writes, updates.reads)


async def test_an_update_alone_is_the_single_document_call(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_one({"_id": 1, "state": "open"})
    updates = GroupedUpdates(jobs)

    claimed = await updates.update_and_read({"_id": 1, "state": "open"}, DONE, token="by")
    again = await updates.update_and_read({"_id": 1, "state": "open"}, DONE, token="by")

    assert claimed is not None and ("done", by(claimed), None) == (
        claimed["state"],
        by(claimed),
        again,
    )
    assert (2, 0) == (updates.writes, updates.reads)


async def test_claims_made_at_once_get_what_they_claimed_from_one_read(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(6)])
    await jobs.update_one({"_id": 2}, {"$set": {"state": "taken"}})
    updates = GroupedUpdates(jobs)

    def claim(ids: range) -> Awaitable[list[dict[str, object] | None]]:
        where = [{"_id": n, "state": "open"} for n in ids]
        return asyncio.gather(*(updates.update_and_read(w, DONE, token="by") for w in where))

    some = await claim(range(4))
    every = await claim(range(4, 6))

    assert [0, 1, None, 3] == [c and c["_id"] for c in some]
    assert [4, 5] == [c and c["_id"] for c in every]  # all applied: read back for the claims
    stored = {job["_id"]: by(job) async for job in jobs.find()}
    assert [stored[n] for n in (0, 1, 3, 4, 5)] == [by(c) for c in some + every if c]
    assert (2, 2) == (updates.writes, updates.reads)


async def test_an_update_the_store_refuses_fails_its_caller_alone(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": 1, "state": "open"}, {"_id": 2, "state": "open", "n": "x"}])
    updates = GroupedUpdates(jobs)

    outcomes = await asyncio.gather(
        updates.update({"_id": 1, "state": "open"}, DONE, token="by"),
        updates.update({"_id": 2}, {"$inc": {"n": 1}}, token="by"),
        updates.update({"_id": 3}, {"$set": {"n": 2**64}}, token="by"),  # BSON cannot hold it
        return_exceptions=True,
    )

    assert (True, WriteError, OverflowError) == (
        outcomes[0],
        type(outcomes[1]),
        type(outcomes[2]),
    )


class HeldWrites:
    """A write that records its items and waits to be released; `started` is set as the
    first begins."""

    def __init__(self) -> None:
        self.written: list[list[str]] = []
        self.started, self.release, self.second = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def __call__(self, items: list[str]) -> list[str | Exception]:
        self.written.append(items)
        self.started.set()
        if len(self.written) == 2:
            self.second.set()
        await self.release.wait()
        return list(items)


async def test_a_caller_gone_before_its_write_started_has_it_dropped() -> None:
    held = HeldWrites()
    batched: Batched[str, str] = Batched(held)
    first = asyncio.create_task(batched.add(["first"]))
    await held.started.wait()  # the first write is under way, held
    gone = asyncio.create_task(batched.add(["gone"]))
    kept = asyncio.create_task(batched.add(["kept"]))
    await asyncio.sleep(0)  # both wait for the next write
    gone.cancel()
    held.release.set()

    assert (["first"], ["kept"]) == (await first, await kept)
    assert gone.cancelled()
    assert [["first"], ["kept"]] == held.written


async def test_writes_of_a_caller_gone_meanwhile_are_still_made_when_kept() -> None:
    held = HeldWrites()
    batched: Batched[str, str] = Batched(held, keep_gone=True)  # as counts are
    first = asyncio.create_task(batched.add(["first"]))
    await held.started.wait()
    gone = asyncio.create_task(batched.add(["gone"]))
    await asyncio.sleep(0)
    gone.cancel()
    held.release.set()
    await first
    async with asyncio.timeout(5):
        await held.second.wait()

    assert [["first"], ["gone"]] == held.written


async def test_a_write_that_breaks_fails_its_callers_and_the_next_write_goes() -> None:
    calls: list[list[int]] = []

    async def write(items: list[int]) -> list[int | Exception]:
        calls.append(items)
        if len(calls) == 1:
            return []  # the wrong count: what each got is unknown
        return list(items)

    batched: Batched[int, int] = Batched(write)
    async with asyncio.timeout(5):
        broken = await asyncio.gather(batched.add([1]), batched.add([2]), return_exceptions=True)
        assert [AutoReconnect, AutoReconnect] == [type(outcome) for outcome in broken]
        assert [3] == await batched.add([3])


async def test_a_writer_cancelled_before_it_started_leaves_nobody_waiting() -> None:
    async def write(items: list[int]) -> list[int | Exception]:
        return list(items)

    batched: Batched[int, int] = Batched(write)
    waiting = asyncio.create_task(batched.add([1]))
    await asyncio.sleep(0)  # the caller is in and its writer made, not yet started
    writer = batched._writer  # the task a shutdown would cancel
    assert writer is not None
    writer.cancel()

    async with asyncio.timeout(5):
        outcome = await asyncio.gather(waiting, return_exceptions=True)
    assert [AutoReconnect] == [type(o) for o in outcome]


async def test_writes_made_at_once_share_a_write_and_a_refused_one_fails_its_caller_alone(
    bare_store: Store,
) -> None:
    tallies = bare_store.db["tallies"]
    await tallies.insert_one({"_id": "text", "n": "not a number"})
    writes = grouped_writes(bare_store, tallies)

    def add(key: str) -> Awaitable[None]:
        return writes.write([UpdateOne({"_id": key}, {"$inc": {"n": 1}}, upsert=True)])

    outcomes = await asyncio.gather(
        *(add(key) for key in ["a", "b", "a", "text", "b", "a"]), return_exceptions=True
    )

    assert [None, None, None, WriteError, None, None] == [
        type(o) if isinstance(o, Exception) else o for o in outcomes
    ]
    assert 1 == writes.writes
    stored = {t["_id"]: t["n"] async for t in tallies.find()}
    assert {"a": 3, "b": 2, "text": "not a number"} == stored


async def test_a_write_carries_at_most_its_most_and_the_rest_follow_in_order() -> None:
    written: list[list[str]] = []

    async def write(items: list[str]) -> list[str | Exception]:
        written.append(items)
        return list(items)

    batched: Batched[str, str] = Batched(write, most=2)
    # Apart by first letter: the second a-item may not share a write with the first.
    apart: Batched[str, str] = Batched(write, apart=lambda item: item[0], most=2)
    async with asyncio.timeout(5):
        assert ["1", "2", "3", "4", "5"] == await batched.add(["1", "2", "3", "4", "5"])
        assert [["1", "2"], ["3", "4"], ["5"]] == written
        written.clear()
        outcomes = await asyncio.gather(apart.add(["a1", "a2", "b1"]), apart.add(["c1", "d1"]))
    assert (["a1", "a2", "b1"], ["c1", "d1"]) == tuple(outcomes)
    assert [["a1", "b1"], ["a2", "c1"], ["d1"]] == written


async def test_a_large_write_goes_in_parts_of_most_per_write(bare_store: Store) -> None:
    tallies = bare_store.db["tallies"]
    writes = grouped_writes(bare_store, tallies)
    count = 2 * MOST_PER_WRITE + 50

    await writes.write(
        [UpdateOne({"_id": n}, {"$inc": {"n": 1}}, upsert=True) for n in range(count)]
    )

    assert (3, count) == (writes.writes, await tallies.count_documents({"n": 1}))


async def test_an_update_of_many_goes_a_part_at_a_time_to_what_still_matches(
    bare_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = bare_store.db["jobs"]
    count = 2 * MOST_PER_WRITE + 50
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(count)])
    parts: list[int] = []
    update_many = jobs.update_many

    async def recorded(where: dict[str, Any], change: dict[str, Any]) -> UpdateResult:
        parts.append(len(where["_id"]["$in"]))
        if len(parts) == 1:  # meanwhile another writer closes a job of the last part
            await update_many({"_id": count - 1}, DONE)
        return await update_many(where, change)

    monkeypatch.setattr(jobs, "update_many", recorded)
    changed = await update_in_parts(jobs, {"state": "open"}, {"$set": {"state": "moved"}})

    assert ([MOST_PER_WRITE, MOST_PER_WRITE, 50], count - 1) == (parts, changed)
    assert (count - 1, 1) == (
        await jobs.count_documents({"state": "moved"}),
        await jobs.count_documents({"state": "done"}),
    )


async def test_each_store_keeps_one_grouped_writer_of_a_kind_per_collection(
    bare_store: Store,
) -> None:
    messages = grouped_updates(bare_store, bare_store.messages)

    assert messages is grouped_updates(bare_store, bare_store.db["messages"])
    assert messages is not grouped_updates(bare_store, bare_store.lane_state)
    other = Store("mongodb://127.0.0.1:1", bare_store.db.name)  # another process's, say
    assert messages is not grouped_updates(other, other.messages)
    await other.close()
