"""Ready means connected: no service reads a backlog or rewrites stored data before /readyz
answers, so a restart during an incident is back as soon as its broker and store are."""

import asyncio

import pytest

from devtools.stack import SERVICES
from lanegate.store import Store
from lanegate.store.indexes import INDEXES
from tests.support.gateway import Gateway, eventually
from tests.support.messages import send
from tests.support.receiver import Receiver
from tests.support.store_proxy import StoreProxy

pytestmark = pytest.mark.e2e

# What grows with the data: the message and delivery backlogs, and rewrites of instances.
BACKLOG = [("find", "messages"), ("find", "webhook_deliveries"), ("update", "instances")]


@pytest.mark.parametrize("service", list(SERVICES))
async def test_a_service_is_ready_while_its_store_holds_back_every_backlog_read(
    gateway: Gateway, receiver: Receiver, proxy: StoreProxy, service: str
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    await send(gateway, key, name)  # waits while the instance is closed
    for command, collection in BACKLOG:
        proxy.hold(command, collection)
    stack = gateway.stack
    await asyncio.to_thread(stack.stop, service)
    await asyncio.to_thread(stack.start, service, wait=False, env={"LANEGATE_MONGO_URI": proxy.uri})
    try:
        await eventually(lambda: gateway.ready(service), timeout=30)
    finally:
        proxy.release()
        await asyncio.to_thread(stack.stop, service)
        await asyncio.to_thread(stack.start, service)


async def test_a_start_on_a_store_with_every_index_creates_none(
    gateway: Gateway, proxy: StoreProxy
) -> None:
    # Some engines pass over the whole collection for each index asked for again.
    for _ in range(2):
        store = Store(proxy.uri, "lanegate_test")
        await store.connect()
        await store.close()
    assert 0 == sum(n for (command, _), n in proxy.seen.items() if command == "createIndexes")
    assert 2 * len(INDEXES) == sum(
        n for (command, _), n in proxy.seen.items() if command == "listIndexes"
    )
