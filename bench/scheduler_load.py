"""How long a scheduler replica takes to load the shards it claims, per 1,000 waiting messages,
beside a bare find of the same messages, with the rest of the collection small and then large.

The load is `Loader.shards` as a replica runs it after a claim (stamp the lane
records, the deleted instances' names, the instances, the records, the waiting
messages in pages, all put in the planner at once). The bare baseline is one
`find` of the same waiting messages with the same fields, read to a list.
Then the collection grows by messages the load must not read (sent messages of
the same instances, waiting messages of other shards) and both run again.

Run: .venv/bin/python -m bench.scheduler_load [--waiting 2000] [--others 2000] [--rounds 3]
(starts its own store of the engine `LANEGATE_TEST_STORE` names, mongoeco by default)
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.stack import StoreEngine, lone_store
from lane_scheduler.ledger import Ledger
from lane_scheduler.loading import MESSAGE_FIELDS, Loader
from lane_scheduler.ownership import SHARDS, shard_of
from lane_scheduler.planner import Planner
from lanegate.lifecycle import PLANNED
from lanegate.store import Store

INSTANCES = 20
BATCH = 100  # documents per insert: the embedded store answers nothing else meanwhile
LOADED_SHARDS = set(range(SHARDS // 2))  # the claiming replica's half


def _names(shards: set[int], count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = f"bench__load__{uuid.uuid4().hex[:8]}"
        if shard_of(name) in shards:
            names.append(name)
    return names


def _message(name: str, status: str, at: datetime) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "tenantId": "bench",
        "instanceName": name,
        "to": "5491100000007",
        "lane": "bulk",
        "priority": 5,
        "status": status,
        "queuedAt": at,
        "createdAt": at,
    }


async def _insert(store: Store, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), BATCH):
        await store.messages.insert_many(messages[start : start + BATCH])


async def _nothing() -> None:
    return None


async def _time_load(store: Store, names: list[str]) -> tuple[float, float, int]:
    """Seconds of one replica's load and of the bare find of the same messages; the count."""
    gained = {shard: 1 for shard in LOADED_SHARDS}
    planner = Planner()
    started = time.perf_counter()
    await Loader(store, Ledger(store), planner).shards(gained, time.time(), _nothing)
    load = time.perf_counter() - started
    started = time.perf_counter()
    found = await store.messages.find(
        {"instanceName": {"$in": names}, "status": {"$in": list(PLANNED)}}, MESSAGE_FIELDS
    ).to_list()
    bare = time.perf_counter() - started
    assert sum(planner.depth().values()) == len(found), "the load missed waiting messages"
    return load, bare, len(found)


async def measure(store_uri: str, waiting: int, others: int, rounds: int) -> list[str]:
    store = Store(store_uri, "bench_load")
    await store.connect()
    lines = []
    try:
        names = _names(LOADED_SHARDS, INSTANCES)
        outside = _names(set(range(SHARDS)) - LOADED_SHARDS, INSTANCES)
        await store.instances.insert_many(
            [
                {"_id": name, "tenantId": "bench", "provider": "sandbox", "state": "open"}
                for name in names + outside
            ]
        )
        now = datetime.now(UTC)
        await _insert(
            store, [_message(names[n % INSTANCES], "pending", now) for n in range(waiting)]
        )
        for label in (f"collection of {waiting:,}", f"collection of {waiting + others:,}"):
            loads, bares = [], []
            for _ in range(rounds):
                load, bare, count = await _time_load(store, names)
                loads.append(load * 1000 / count)
                bares.append(bare * 1000 / count)
            load_s, bare_s = statistics.median(loads), statistics.median(bares)
            lines.append(
                f"{label}: load {load_s * 1000:.0f} ms per 1,000 waiting messages, bare find "
                f"{bare_s * 1000:.0f} ms, ratio {load_s / bare_s:.2f} (median of {rounds})"
            )
            print(lines[-1], flush=True)
            if label.endswith(f"{waiting:,}"):
                # Messages the load must not read: sent ones of its instances, others' waiting.
                half = others // 2
                await _insert(
                    store,
                    [_message(names[n % INSTANCES], "sent", now) for n in range(half)]
                    + [_message(outside[n % INSTANCES], "pending", now) for n in range(half)],
                )
    finally:
        await store.db.client.drop_database("bench_load")
        await store.close()
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.scheduler_load")
    parser.add_argument("--waiting", type=int, default=2_000)
    parser.add_argument("--others", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    with lone_store(
        Path("var/bench-logs") / f"lgstore-{uuid.uuid4().hex[:8]}",
        StoreEngine.from_environment(os.environ),
    ) as store_uri:
        print(
            f"a replica loading {INSTANCES} instances' {args.waiting:,} waiting messages "
            f"(half the shards), beside a bare find of them"
        )
        asyncio.run(measure(store_uri, args.waiting, args.others, args.rounds))


if __name__ == "__main__":
    main(sys.argv[1:])
