"""Writes made at once share one bulk write, and each caller still hears its own outcome
(whether its conditional update applied, the error of its refused write): on a real store."""

import asyncio
from collections.abc import Awaitable, Callable

from pymongo import UpdateOne
from pymongo.errors import WriteError

from lanegate.store import Document, Store
from lanegate.store.grouped import Batched, GroupedUpdates, grouped_updates, grouped_writes


def stamped(token: str) -> dict[str, dict[str, str]]:
    return {"$set": {"state": "done", "by": token}}


def stamped_by(token: str) -> Callable[[Document], bool]:
    return lambda job: job.get("by") == token


async def test_updates_made_at_once_share_a_write_and_each_hears_its_own_outcome(
    bare_store: Store,
) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(10)])
    updates = GroupedUpdates(jobs)

    # Two callers race for job 0; jobs 8 and 9 are not open; job 42 does not exist.
    asked = [0, 0, *range(1, 10), 42]
    await jobs.update_many({"_id": {"$in": [8, 9]}}, {"$set": {"state": "done"}})
    outcomes = await asyncio.gather(
        *(
            updates.update({"_id": n, "state": "open"}, stamped(f"c{i}"), stamped_by(f"c{i}"))
            for i, n in enumerate(asked)
        )
    )

    assert [True, False, *[True] * 7, False, False, False] == outcomes
    # The eleven made at once went together and were read back (8 of 11 applied); the second
    # update of job 0 waited for the next write, so updates of one document keep their order.
    assert (2, 1) == (updates.writes, updates.reads)
    assert "c0" == (await jobs.find_one({"_id": 0}) or {}).get("by")


async def test_nothing_is_read_back_when_every_update_or_none_applied(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(5)])
    updates = GroupedUpdates(jobs)

    def run(state: str) -> Awaitable[list[bool]]:
        return asyncio.gather(
            *(
                updates.update({"_id": n, "state": state}, stamped("x"), stamped_by("x"))
                for n in range(5)
            )
        )

    assert [True] * 5 == await run("open")
    assert [False] * 5 == await run("open")  # all done now
    assert (2, 0) == (updates.writes, updates.reads)


async def test_an_update_alone_is_the_single_document_call(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_one({"_id": 1, "state": "open"})
    updates = GroupedUpdates(jobs)

    claimed = await updates.update_and_read(
        {"_id": 1, "state": "open"}, stamped("a"), stamped_by("a")
    )
    again = await updates.update_and_read(
        {"_id": 1, "state": "open"}, stamped("b"), stamped_by("b")
    )

    assert ({"_id": 1, "state": "done", "by": "a"}, None) == (claimed, again)
    assert (2, 0) == (updates.writes, updates.reads)


async def test_claims_made_at_once_get_what_they_claimed_from_one_read(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(4)])
    await jobs.update_one({"_id": 2}, {"$set": {"state": "taken"}})
    updates = GroupedUpdates(jobs)

    claimed = await asyncio.gather(
        *(
            updates.update_and_read(
                {"_id": n, "state": "open"}, stamped(f"c{n}"), stamped_by(f"c{n}")
            )
            for n in range(4)
        )
    )

    assert [{"_id": 0, "state": "done", "by": "c0"}, {"_id": 1, "state": "done", "by": "c1"}] == (
        claimed[:2]
    )
    assert [None, {"_id": 3, "state": "done", "by": "c3"}] == claimed[2:]
    assert (1, 1) == (updates.writes, updates.reads)


async def test_an_update_the_store_refuses_fails_its_caller_alone(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": 1, "state": "open"}, {"_id": 2, "state": "open", "n": "x"}])
    updates = GroupedUpdates(jobs)

    outcomes = await asyncio.gather(
        updates.update({"_id": 1, "state": "open"}, stamped("a"), stamped_by("a")),
        updates.update({"_id": 2}, {"$inc": {"n": 1}}, stamped_by("never")),
        return_exceptions=True,
    )

    assert True is outcomes[0] and isinstance(outcomes[1], WriteError)


async def test_a_caller_gone_before_its_write_started_has_it_dropped(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(3)])
    updates = GroupedUpdates(jobs)

    def update(n: int) -> "asyncio.Task[bool]":
        where = {"_id": n, "state": "open"}
        return asyncio.create_task(updates.update(where, stamped("x"), stamped_by("x")))

    first = update(0)
    await asyncio.sleep(0)  # the first's write is under way
    gone, kept = update(1), update(2)
    await asyncio.sleep(0)  # both wait for the next write
    gone.cancel()

    assert (True, True) == (await first, await kept)
    assert gone.cancelled()
    assert ["done", "open", "done"] == [j["state"] async for j in jobs.find().sort("_id", 1)]


async def test_a_writer_that_breaks_fails_every_waiting_caller_and_the_next_write_goes() -> None:
    calls: list[list[int]] = []

    async def write(items: list[int]) -> list[int | Exception]:
        calls.append(items)
        if len(calls) == 1:
            return []  # the wrong count: the writer breaks
        return list(items)

    batched: Batched[int, int] = Batched(write)
    broken = await asyncio.gather(batched.add([1]), batched.add([2]), return_exceptions=True)

    assert all(isinstance(outcome, Exception) for outcome in broken)
    assert [3] == await batched.add([3])


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


async def test_each_store_keeps_one_grouped_writer_of_a_kind_per_collection(
    bare_store: Store,
) -> None:
    messages = grouped_updates(bare_store, bare_store.messages)

    assert messages is grouped_updates(bare_store, bare_store.db["messages"])
    assert messages is not grouped_updates(bare_store, bare_store.lane_state)
    other = Store("mongodb://127.0.0.1:1", bare_store.db.name)  # another process's, say
    assert messages is not grouped_updates(other, other.messages)
    await other.close()
