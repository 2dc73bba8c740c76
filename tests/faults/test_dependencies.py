"""A dependency that is away gets a 503 the client can retry, never a 500."""

import asyncio

import pytest

from ingress_api.accept.settling import settle
from lanegate.broker import Broker
from lanegate.events import new_id, utcnow
from lanegate.store import Store
from tests.faults.rabbit import RabbitNode
from tests.support.gateway import Gateway, hearing
from tests.support.messages import DB

pytestmark = pytest.mark.e2e


async def test_with_the_store_stopped_the_api_answers_503_not_500(
    fault_gateway: Gateway,
) -> None:
    _, key = await fault_gateway.tenant()
    stack = fault_gateway.stack
    await asyncio.to_thread(stack.stop, "store")
    try:
        status, body = await fault_gateway.call("GET", "/instances", key=key)
    finally:
        await asyncio.to_thread(stack.start_store)
    assert 503 == status
    assert "SERVICE_UNAVAILABLE" == body["code"]

    status, _ = await fault_gateway.call("GET", "/instances", key=key)
    assert 200 == status


async def test_a_failed_sends_leftovers_are_settled_once_the_store_is_back(
    fault_gateway: Gateway, rabbit: RabbitNode
) -> None:
    # An insert may land with its answer lost while the store restarts, and the client hears
    # 503. Once the store is back, a message without an externalId is deleted (the client
    # sends it again); one with an externalId is announced (its repeat is answered with it).
    stack, namespace = fault_gateway.stack, fault_gateway.namespace
    now = utcnow()
    loose = {"_id": new_id(), "status": "pending"}
    keyed = {
        "_id": new_id(),
        "status": "pending",
        "externalId": "order-1",
        "tenantId": "t-leftovers",
        "instanceName": "t-leftovers__support__main",
        "lane": "urgent",
        "to": "5491100000009",
        "createdAt": now,
    }
    store, broker = Store(fault_gateway.store_uri, DB), Broker(rabbit.url, namespace)
    await store.connect()
    await broker.connect()
    try:
        async with hearing(rabbit.url, namespace, "message.accepted") as next_event:
            await store.messages.insert_many([loose, keyed])
            await asyncio.to_thread(stack.stop, "store")
            try:
                settling = asyncio.create_task(settle([loose, keyed], store, broker, every=0.2))
                await asyncio.sleep(2)
                assert not settling.done()
            finally:
                await asyncio.to_thread(stack.start_store)
            await asyncio.wait_for(settling, 60)
            assert keyed["_id"] == (await next_event())["messageId"]
        ours = {"_id": {"$in": [loose["_id"], keyed["_id"]]}}
        assert [keyed["_id"]] == [m["_id"] async for m in store.messages.find(ours, {"_id": 1})]
    finally:
        await broker.close()
        await store.close()
        await asyncio.to_thread(stack.wait_ready)
