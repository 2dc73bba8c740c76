"""Writes made at once share one bulk write, and each caller still hears its own outcome
(whether its conditional update applied, the error of its refused write): on a real store."""

import asyncio
from collections.abc import Awaitable, Callable

from pymongo import UpdateOne
from pymongo.errors import WriteError

from lanegate.store import Document, Store
from lanegate.store.grouped import GroupedUpdates, grouped_writes


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
            updates.update(
                {"_id": n, "state": "open"},
                stamped(f"caller{i}"),
                stamped_by(f"caller{i}"),
            )
            for i, n in enumerate(asked)
        )
    )

    assert [True, False, *[True] * 7, False, False, False] == outcomes
    # The eleven made at once went together; the second update of job 0 waited for the next
    # write, so updates of one document keep their order.
    assert 2 == updates.writes
    assert "caller0" == (await jobs.find_one({"_id": 0}) or {}).get("by")


async def test_when_every_update_applies_nothing_is_read_back(bare_store: Store) -> None:
    jobs = bare_store.db["jobs"]
    await jobs.insert_many([{"_id": n, "state": "open"} for n in range(5)])
    updates = GroupedUpdates(jobs)

    def never_asked(_: object) -> bool:
        raise AssertionError("read back although every update applied")

    outcomes = await asyncio.gather(
        *(updates.update({"_id": n, "state": "open"}, stamped("x"), never_asked) for n in range(5))
    )

    assert [True] * 5 == outcomes


async def test_writes_made_at_once_share_a_write_and_a_refused_one_fails_its_caller_alone(
    bare_store: Store,
) -> None:
    tallies = bare_store.db["tallies"]
    await tallies.insert_one({"_id": "text", "n": "not a number"})
    writes = grouped_writes(tallies)

    def add(key: str) -> Awaitable[None]:
        return writes.write([UpdateOne({"_id": key}, {"$inc": {"n": 1}}, upsert=True)])

    outcomes = await asyncio.gather(
        *(add(key) for key in ["a", "b", "a", "text", "b", "a"]), return_exceptions=True
    )

    assert [None, None, None, WriteError, None, None] == [
        type(o) if isinstance(o, Exception) else o for o in outcomes
    ]
    assert 1 == writes.writes
    assert writes is grouped_writes(bare_store.db["tallies"])  # one per collection
    stored = {t["_id"]: t["n"] async for t in tallies.find()}
    assert {"a": 3, "b": 2, "text": "not a number"} == stored


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
    assert 1 == updates.writes
