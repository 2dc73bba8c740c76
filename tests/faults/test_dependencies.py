"""A dependency that is away gets a 503 the client can retry, never a 500."""

import asyncio

import pytest

from tests.support.gateway import Gateway

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
