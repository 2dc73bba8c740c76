"""Conditional updates made at once share one bulk write, and each caller still hears whether
its own update applied: on a real store."""

import asyncio
from collections.abc import Callable

from lanegate.store import Document, Store
from lanegate.store.grouped import GroupedUpdates


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

    winner = f"caller{outcomes[:2].index(True)}"
    assert [*sorted(outcomes[:2]), *outcomes[2:]] == [False, True, *[True] * 7, False, False, False]
    assert 1 == updates.writes  # the twelve made at once went together
    assert winner == (await jobs.find_one({"_id": 0}) or {}).get("by")


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
