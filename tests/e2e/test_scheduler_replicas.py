"""Two lane-scheduler replicas, one killed mid-run: every message once, no cap exceeded."""

import asyncio
import itertools
import socket
import time
import uuid
from typing import Any

import pytest

from lane_scheduler.ownership import SHARDS, shard_of
from tests.support.gateway import Gateway, eventually
from tests.support.messages import DB, outbox_counts, send, statuses, wait_status
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

PER_HOUR = 3
SENDS = 5
LANES = {"normal": {"delayMs": [600, 800], "perHour": PER_HOUR}}


async def _owners(gateway: Gateway) -> dict[int, str]:
    async with gateway.mongo() as client:
        return {
            doc["_id"]: doc["owner"]
            async for doc in client[DB].scheduler_shards.find({"owner": {"$ne": None}})
        }


def _name_in(tenant_id: str, shards: set[int]) -> str:
    while True:
        name = f"{tenant_id}__replica__{uuid.uuid4().hex[:6]}"
        if shard_of(name) in shards:
            return name


async def test_a_killed_replicas_instances_move_and_send_every_message_once_within_caps(
    gateway: Gateway, receiver: Receiver
) -> None:
    gateway.stack.start_replica("lane_scheduler_2", "lane_scheduler")
    try:
        await _run(gateway, receiver)
    finally:
        if "lane_scheduler_2" in gateway.stack.processes:
            gateway.stack.kill("lane_scheduler_2")

    async def one_owner_again() -> bool:
        owners = await _owners(gateway)
        return len(owners) == SHARDS and len(set(owners.values())) == 1

    await eventually(one_owner_again, timeout=15)


async def _run(gateway: Gateway, receiver: Receiver) -> None:
    async def two_owners() -> bool:
        owners = await _owners(gateway)
        return len(owners) == SHARDS and len(set(owners.values())) == 2

    await eventually(two_owners, timeout=30)
    owners = await _owners(gateway)
    doomed_replica = f"{socket.gethostname()}:{gateway.stack.ports['lane_scheduler_2']}"
    doomed = {shard for shard, owner in owners.items() if owner == doomed_replica}
    survivor = set(range(SHARDS)) - doomed

    tenant_id, key = await gateway.tenant()
    names = [_name_in(tenant_id, shards) for shards in (doomed, doomed, survivor)]
    for name in names:
        await gateway.instance(tenant_id, key, receiver.url(), lanes=LANES, name=name)
    sent: dict[str, list[str]] = {}
    for name in names:
        sent[name] = [await send(gateway, key, name, lane="normal") for _ in range(SENDS)]

    # Kill the replica as soon as its instances have sent their first message.
    await wait_status(gateway, "sent", sent[names[0]][0], sent[names[1]][0])
    gateway.stack.kill("lane_scheduler_2")
    killed_at = time.monotonic()

    async def doomed_shards_taken() -> bool:
        owners = await _owners(gateway)
        return all(owners.get(shard) not in (None, doomed_replica) for shard in doomed)

    await eventually(doomed_shards_taken, timeout=15)
    assert time.monotonic() - killed_at < 10

    every = [message_id for ids in sent.values() for message_id in ids]

    async def caps_reached() -> bool:
        found = [await statuses(gateway, *ids) for ids in sent.values()]
        return all(s.count("sent") == PER_HOUR for s in found)

    await eventually(caps_reached, timeout=30)
    await asyncio.sleep(2)  # more than the lane delay: anything over the cap would have gone
    for ids in sent.values():
        # Which of them went may differ from the order they were accepted: events forwarded
        # through the dead replica's successor can arrive after later ones (README).
        found = await statuses(gateway, *ids)
        assert (PER_HOUR, SENDS - PER_HOUR) == (found.count("sent"), found.count("pending"))
    assert [1] * PER_HOUR * len(names) == [
        count for count in await outbox_counts(gateway, *every) if count
    ]
    await _assert_gaps(gateway, sent)


async def _assert_gaps(gateway: Gateway, sent: dict[str, list[str]]) -> None:
    async with gateway.mongo() as client:
        for ids in sent.values():
            query = {"_id": {"$in": ids}, "sentAt": {"$ne": None}}
            docs: list[dict[str, Any]] = [doc async for doc in client[DB].messages.find(query)]
            times = sorted(doc["sentAt"].timestamp() for doc in docs)
            assert all(b - a >= 0.599 for a, b in itertools.pairwise(times)), times
