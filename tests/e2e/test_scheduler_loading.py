"""A scheduler replica whose store is slow to give its waiting messages: ready at once, its
leases kept all through the load, and the messages sent once when the load ends."""

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devtools.stack import delete_topology
from lane_scheduler.ownership import SHARDS, Ownership, assign, shard_of
from lane_scheduler.scheduler import Scheduler
from lanegate.broker import Broker
from lanegate.store import Store
from tests.conftest import AMQP_URL
from tests.support.gateway import Gateway, eventually
from tests.support.messages import DB, outbox_counts, send, statuses, wait_status
from tests.support.receiver import Receiver
from tests.support.store_proxy import StoreProxy

pytestmark = pytest.mark.e2e

SLOW = "lane_scheduler"  # restarted in place, its store behind the proxy
OTHER = "lane_scheduler_2"  # a second replica that would take any lease left to lapse
LEASE_SECONDS = 3
MESSAGES = 12


def _replica(gateway: Gateway, process: str) -> str:
    return f"{socket.gethostname()}:{gateway.stack.ports[process]}"


async def _shards(gateway: Gateway) -> dict[int, dict[str, Any]]:
    async with gateway.mongo() as client:
        return {doc["_id"]: doc async for doc in client[DB].scheduler_shards.find({})}


@pytest.fixture
async def proxy(gateway: Gateway) -> AsyncIterator[StoreProxy]:
    """The store behind a proxy; afterwards the stack's scheduler runs as it did."""
    store_proxy = StoreProxy(gateway.stack.store_port)
    await store_proxy.start()
    stack = gateway.stack
    try:
        yield store_proxy
    finally:
        # The stack's own scheduler again, alone.
        store_proxy.release()
        for process in (SLOW, OTHER):
            if process in stack.processes:
                await asyncio.to_thread(stack.kill, process)
        await store_proxy.close()
        await asyncio.to_thread(stack.start, SLOW)


async def test_a_replica_loading_from_a_slow_store_is_ready_keeps_its_leases_and_sends_once(
    gateway: Gateway, receiver: Receiver, proxy: StoreProxy
) -> None:
    stack = gateway.stack
    await asyncio.to_thread(stack.start_replica, OTHER, "lane_scheduler")
    slow, other = _replica(gateway, SLOW), _replica(gateway, OTHER)

    async def split() -> bool:
        owners = {doc["owner"] for doc in (await _shards(gateway)).values()}
        return {slow, other} == owners

    await eventually(split, timeout=30)

    # An instance of the first replica's, with messages waiting while it is closed.
    tenant_id, key = await gateway.tenant()
    name = next(
        candidate
        for candidate in (f"{tenant_id}__loading__{uuid.uuid4().hex[:6]}" for _ in range(1000))
        if assign(shard_of(candidate), [slow, other]) == slow
    )
    await gateway.instance(tenant_id, key, receiver.url(), name=name, connect=False)
    sent = [await send(gateway, key, name, lane="normal") for _ in range(MESSAGES)]

    # Restarted in place, it takes its leases back at once and loads their messages from a
    # store that holds that read; the other replica takes any lease the load lets lapse.
    proxy.hold("find", "messages")
    settings = {
        "LANEGATE_MONGO_URI": proxy.uri,
        "LANEGATE_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    await asyncio.to_thread(stack.kill, SLOW)
    await asyncio.to_thread(stack.start, SLOW, wait=False, env=settings)

    async def loading() -> bool:
        leases = await _shards(gateway)
        return proxy.held > 0 and leases[shard_of(name)]["owner"] == slow

    await eventually(loading, timeout=60)
    await eventually(lambda: gateway.ready(SLOW), timeout=30)
    assert 0 < proxy.held
    assert 0 < await gateway.metric(SLOW, "lanegate_scheduler_shards_loading")
    lease = (await _shards(gateway))[shard_of(name)]

    # Opened while its shard loads: the state event waits in the replica, not in the queue.
    status, body = await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    assert 202 == status, body
    held_since = time.time()

    async def renewed_twice_over() -> bool:
        until = (await _shards(gateway))[shard_of(name)]["until"]
        return bool(until.timestamp() > held_since + 2 * LEASE_SECONDS)

    await eventually(renewed_twice_over, timeout=30)
    now = (await _shards(gateway))[shard_of(name)]
    assert (slow, lease["epoch"]) == (now["owner"], now["epoch"])
    assert 0 < proxy.held
    assert ["pending"] * MESSAGES == await statuses(gateway, *sent)

    proxy.release()
    await wait_status(gateway, "sent", *sent, timeout=60)
    assert [1] * MESSAGES == await outbox_counts(gateway, *sent)
    final = (await _shards(gateway))[shard_of(name)]
    assert (slow, lease["epoch"]) == (final["owner"], final["epoch"])


async def test_a_pass_renews_the_leases_before_it_reads_whose_they_are(gateway: Gateway) -> None:
    # On a slow store every round trip before the renewal shortens the lease it extends.
    store_proxy = StoreProxy(gateway.stack.store_port)
    await store_proxy.start()
    database = f"lanegate_renew_{uuid.uuid4().hex[:8]}"
    store = Store(store_proxy.uri, database)
    await store.connect()
    clock = [time.time()]
    ownership = Ownership(store, "renewing", lambda: clock[0], lease_seconds=LEASE_SECONDS)
    try:
        await ownership.prepare()
        await ownership.balance()
        assert SHARDS == len(ownership.epochs)

        clock[0] += 2
        store_proxy.hold("find", "scheduler_shards")
        renewing = asyncio.create_task(ownership.balance())

        async def renewed() -> bool:
            async with gateway.mongo() as client:
                leases = [doc async for doc in client[database].scheduler_shards.find({})]
            # Stored to the millisecond.
            until = clock[0] + LEASE_SECONDS - 0.001
            return all(doc["until"].timestamp() >= until for doc in leases)

        await eventually(renewed, timeout=30)
        assert not renewing.done()  # still waiting to read whose the leases are
        store_proxy.release()
        changes = await renewing
        assert (set(), {}) == (changes.lost, changes.gained)
    finally:
        store_proxy.release()
        await store.db.client.drop_database(database)
        await store.close()
        await store_proxy.close()


async def test_leases_are_renewed_while_a_pass_waits_to_read_whose_they_are(
    gateway: Gateway,
) -> None:
    # The pass that reads the others' leases and claims takes several round trips; on a slow
    # store it outlasted the lease when the renewal came with it.
    store_proxy = StoreProxy(gateway.stack.store_port)
    await store_proxy.start()
    database = f"lanegate_keep_{uuid.uuid4().hex[:8]}"
    store = Store(store_proxy.uri, database)
    await store.connect()
    broker = Broker(AMQP_URL, f"lgkeep-{uuid.uuid4().hex[:8]}")
    await broker.connect()
    scheduler = Scheduler(
        store, broker, replica="keeping", dispatch_timeout=60, lease_seconds=LEASE_SECONDS
    )
    try:
        await scheduler.start()
        store_proxy.hold("find", "scheduler_shards")
        held_since = time.time()

        async def renewed_twice_over() -> bool:
            async with gateway.mongo() as client:
                leases = [doc async for doc in client[database].scheduler_shards.find({})]
            return all(
                doc["owner"] == "keeping"
                and doc["until"].timestamp() > held_since + 2 * LEASE_SECONDS
                for doc in leases
            )

        await eventually(renewed_twice_over, timeout=30)
        assert 0 < store_proxy.held  # the pass is still waiting
    finally:
        store_proxy.release()
        await scheduler.stop()
        await broker.close()
        await delete_topology(AMQP_URL, broker.namespace)
        await store.db.client.drop_database(database)
        await store.close()
        await store_proxy.close()
