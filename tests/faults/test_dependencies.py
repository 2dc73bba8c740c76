"""A dependency that is away gets a 503 the client can retry, never a 500."""

import asyncio

import pytest

from ingress_api.accepting import withdraw
from lanegate.store import Store
from tests.support.gateway import Gateway
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


async def test_a_failed_accepts_messages_are_withdrawn_once_the_store_is_back(
    fault_gateway: Gateway,
) -> None:
    # The insert of a send may land with its answer lost while the store restarts: the
    # client hears 503, so ingress-api deletes the message as soon as the store is back.
    stack = fault_gateway.stack
    store = Store(fault_gateway.store_uri, DB)
    await store.connect()
    try:
        await store.messages.insert_one({"_id": "orphan", "status": "pending"})
        await asyncio.to_thread(stack.stop, "store")
        try:
            withdrawal = asyncio.create_task(withdraw(["orphan"], store, every=0.2))
            await asyncio.sleep(2)
            assert not withdrawal.done()
        finally:
            await asyncio.to_thread(stack.start_store)
        await asyncio.wait_for(withdrawal, 60)
        assert await store.messages.find_one({"_id": "orphan"}) is None
    finally:
        await store.close()
