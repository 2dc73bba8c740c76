"""What an on-call engineer's alerts read, from the running services: scheduler gauges that
add up over replicas, paused and never-connected instances, the dependency gauge kept fresh
without /readyz, the webhook backlog as the store holds it, and no `_created` series."""

import asyncio
from datetime import timedelta

import aiohttp
import pytest

from devtools.stack import SERVICES
from lane_scheduler.ownership import SHARDS
from lanegate.events import utcnow
from tests.support.gateway import Gateway, eventually
from tests.support.messages import DB, send
from tests.support.receiver import Receiver
from tests.support.store_proxy import StoreProxy

pytestmark = pytest.mark.e2e


async def _changed_to(
    gateway: Gateway, service: str, name: str, want: float, **labels: str
) -> bool:
    return await gateway.metric(service, name, **labels) == want


async def test_a_paused_and_a_never_connected_instance_are_exported_as_such(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    never = await gateway.metric("lane_scheduler", "lanegate_instances", state="never_connected")
    fresh = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    await send(gateway, key, fresh)  # waits, and makes the scheduler plan the instance
    await eventually(lambda: _at_least(gateway, "never_connected", never + 1))

    paused = await gateway.metric("lane_scheduler", "lanegate_instances", state="paused")
    name = await gateway.instance(tenant_id, key, receiver.url())
    status, body = await gateway.call(
        "POST", f"/instance/{name}/pause", key=key, json={"reason": "holiday"}
    )
    assert 200 == status, body
    await eventually(lambda: _at_least(gateway, "paused", paused + 1))
    status, body = await gateway.call("POST", f"/instance/{name}/resume", key=key)
    assert 200 == status, body
    await eventually(
        lambda: _changed_to(gateway, "lane_scheduler", "lanegate_instances", paused, state="paused")
    )


async def _at_least(gateway: Gateway, state: str, count: float) -> bool:
    return await gateway.metric("lane_scheduler", "lanegate_instances", state=state) >= count


async def test_owned_shards_add_up_over_the_replicas(gateway: Gateway) -> None:
    await eventually(
        lambda: _changed_to(gateway, "lane_scheduler", "lanegate_scheduler_owned_shards", SHARDS)
    )
    gateway.stack.start_replica("lane_scheduler_2", "lane_scheduler")
    try:

        async def shared() -> bool:
            first = await gateway.metric("lane_scheduler", "lanegate_scheduler_owned_shards")
            second = await gateway.metric("lane_scheduler_2", "lanegate_scheduler_owned_shards")
            return first > 0 and second > 0 and first + second == SHARDS

        await eventually(shared, timeout=30)
    finally:
        gateway.stack.kill("lane_scheduler_2")
    await eventually(
        lambda: _changed_to(gateway, "lane_scheduler", "lanegate_scheduler_owned_shards", SHARDS),
        timeout=30,
    )


async def test_the_dependency_gauge_follows_a_stopped_store_without_readiness_probes(
    gateway: Gateway, proxy: StoreProxy
) -> None:
    stack = gateway.stack
    await asyncio.to_thread(stack.stop, "template_sync")
    await asyncio.to_thread(stack.start, "template_sync", env={"LANEGATE_MONGO_URI": proxy.uri})
    try:
        up = {"dependency": "store"}
        await eventually(
            lambda: _changed_to(gateway, "template_sync", "lanegate_dependency_up", 1, **up)
        )
        await proxy.close()  # the store is gone for this service; nothing asks /readyz
        await eventually(
            lambda: _changed_to(gateway, "template_sync", "lanegate_dependency_up", 0, **up)
        )
    finally:
        await asyncio.to_thread(stack.stop, "template_sync")
        await asyncio.to_thread(stack.start, "template_sync")


async def test_the_webhook_backlog_gauge_counts_the_retrying_deliveries_in_the_store(
    gateway: Gateway,
) -> None:
    later = utcnow() + timedelta(hours=1)
    waiting = [
        {"_id": f"backlog-{i}", "status": "retrying", "nextAttemptAt": later} for i in range(3)
    ]
    async with gateway.mongo() as client:
        deliveries = client[DB].webhook_deliveries

        async def gauge_matches_store() -> bool:
            stored = await deliveries.count_documents({"status": "retrying"})
            exported = await gateway.metric(
                "webhook_dispatcher", "lanegate_webhook_deliveries_retrying"
            )
            return exported == stored

        await deliveries.insert_many(waiting)
        try:
            await eventually(lambda: _at_least_retrying(gateway, 3), timeout=30)
            await eventually(gauge_matches_store, timeout=30)
        finally:
            await deliveries.delete_many({"_id": {"$in": [d["_id"] for d in waiting]}})
        await eventually(gauge_matches_store, timeout=30)


async def _at_least_retrying(gateway: Gateway, count: int) -> bool:
    exported = await gateway.metric("webhook_dispatcher", "lanegate_webhook_deliveries_retrying")
    return exported >= count


async def test_no_service_exports_created_series(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        for service in SERVICES:
            async with http.get(gateway.stack.url(service) + "/metrics") as response:
                text = await response.text()
            assert "_created" not in text, service
