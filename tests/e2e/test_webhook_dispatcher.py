"""The webhook dispatcher against real receivers: retries, restarts, disabling, replay, fairness.

These tests run their own small stack (store, ingress-api, webhook-dispatcher)
with a shrunk retry schedule, and publish gateway events straight onto the
real broker, so each test controls exactly which events its receiver gets.
"""

import asyncio
import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks import Webhook

from lanegate.broker import Broker
from lanegate.events import InstanceState, MessageStatus
from tests.support.gateway import Gateway, eventually
from tests.support.hooks import (
    DISABLE_AFTER,
    SECRET,
    all_ids,
    delivery,
    instance,
    received,
    stored_instance,
    with_id,
)
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def test_every_attempt_verifies_with_the_seed_recipe_and_standard_webhooks(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    tenant, _, name = await instance(hooks, receiver.url())
    event = received(tenant, name, 1)
    await events_broker.publish(event)

    [request] = await receiver.wait_for(lambda _: True)
    seed = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert seed == request.headers["x-gateway-signature"]
    assert (
        "message.received"
        == Webhook(SECRET.encode()).verify(request.body, request.headers)["event"]
    )
    assert event.id == request.headers["webhook-id"]
    assert {k.lower(): v for k, v in request.headers.items()}["user-agent"].startswith("lanegate/")


async def test_receiver_down_then_up_gets_every_event_once(
    hooks: Gateway, events_broker: Broker
) -> None:
    down = Receiver()  # its port is chosen, nothing listens on it yet
    tenant, _, name = await instance(hooks, down.url())
    events = [received(tenant, name, n) for n in range(5)]
    await events_broker.publish_many(events)

    async def all_failed_once() -> bool:
        async with hooks.mongo() as client:
            found = client.lanegate_test.webhook_deliveries.find(
                {"_id": {"$in": [e.id for e in events]}, "attemptCount": {"$gte": 1}}
            )
            return 5 == len([r async for r in found])

    await eventually(all_failed_once)
    down.start()
    try:
        await down.wait_for(lambda _: True, count=5)
        await asyncio.sleep(1.5)  # room for a duplicate to show up, if one were coming
        ids = all_ids(down)
        assert sorted(e.id for e in events) == sorted(set(ids))
        assert len(ids) == len(set(ids))
        for event in events:
            record = await delivery(hooks, event.id)
            assert "delivered" == record["status"]
            assert record["attempts"][0]["error"].startswith("ClientConnector")
    finally:
        down.stop()


async def test_retries_resume_after_the_dispatcher_is_killed(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 503
    tenant, _, name = await instance(hooks, receiver.url())
    event = received(tenant, name, 1)
    await events_broker.publish(event)
    await receiver.wait_for(lambda _: True, count=2)

    async def recorded() -> bool:
        # Killed in the middle of an attempt, the record would stay claimed for the whole
        # lease (timeout + 30 s) before the restarted dispatcher may try it again.
        attempts = (await delivery(hooks, event.id)).get("attempts", [])
        return len(attempts) >= 2 and len(attempts) == len(receiver.requests)

    await eventually(recorded, every=0.02)
    hooks.stack.kill("webhook_dispatcher")
    try:
        record = await delivery(hooks, event.id)
        assert "retrying" == record["status"]
        assert record["nextAttemptAt"] is not None
        receiver.answer = lambda _: 204
    finally:
        hooks.stack.start("webhook_dispatcher")

    async def delivered() -> bool:
        return "delivered" == (await delivery(hooks, event.id)).get("status")

    await eventually(delivered)
    record = await delivery(hooks, event.id)
    assert [503] * (len(record["attempts"]) - 1) + [204] == [
        a["statusCode"] for a in record["attempts"]
    ]


async def test_retry_after_holds_the_next_attempt_back(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    receiver.answer = lambda r: 503 if len(receiver.requests) == 1 else 204
    receiver.reply_headers = lambda r: {"retry-after": "2"}
    tenant, _, name = await instance(hooks, receiver.url())
    event = received(tenant, name, 1)
    await events_broker.publish(event)

    async def delivered() -> bool:
        return "delivered" == (await delivery(hooks, event.id)).get("status")

    await eventually(delivered)
    first, second = (await delivery(hooks, event.id))["attempts"]
    assert (503, 204) == (first["statusCode"], second["statusCode"])
    assert (second["at"] - first["at"]).total_seconds() >= 2.0


async def test_gone_disables_the_endpoint_until_it_is_enabled_again(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 410
    tenant, key, name = await instance(hooks, receiver.url())
    first = received(tenant, name, 1)
    await events_broker.publish(first)

    async def disabled() -> bool:
        return (await stored_instance(hooks, name)).get("webhookEnabled") is False

    await eventually(disabled)
    assert ["HTTP 410"] == [a["error"] for a in (await delivery(hooks, first.id))["attempts"]]
    second = received(tenant, name, 2)
    await events_broker.publish(second)

    async def recorded_dead() -> bool:
        async with hooks.mongo() as client:
            found = await client.lanegate_test.webhook_deliveries.find_one({"_id": second.id})
        return found is not None and "dead" == found["status"]

    await eventually(recorded_dead)
    assert 1 == len(receiver.requests)
    _, page = await hooks.call(
        "GET", f"/webhooks/deliveries?instanceName={name}&event=instance.webhook_disabled", key=key
    )
    [notice] = page["deliveries"]
    assert "dead" == notice["status"]

    receiver.answer = lambda _: 204
    status, _ = await hooks.call(
        "PATCH", f"/instance/{name}", key=key, json={"webhookEnabled": True}
    )
    assert 200 == status
    third = received(tenant, name, 3)
    await events_broker.publish(third)
    await receiver.wait_for(with_id(third.id))


async def test_an_endpoint_failing_for_the_whole_period_is_disabled(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 500
    tenant, _, name = await instance(hooks, receiver.url())
    started = time.monotonic()
    n = 0

    async def disabled() -> bool:
        nonlocal n
        if n < 4:  # keep failures coming past the period: one event per retry horizon
            n += 1
            await events_broker.publish(received(tenant, name, n))
        return (await stored_instance(hooks, name)).get("webhookEnabled") is False

    await eventually(disabled, timeout=30, every=1.5)
    assert time.monotonic() - started >= DISABLE_AFTER
    stored = await stored_instance(hooks, name)
    assert stored["webhookDisabledReason"].startswith("failing since")


async def test_dead_deliveries_are_replayed_in_bulk_and_one_by_one(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 500
    tenant, key, name = await instance(hooks, receiver.url())
    events = [received(tenant, name, n) for n in range(3)]
    await events_broker.publish_many(events)

    async def all_dead() -> bool:
        return all(["dead" == (await delivery(hooks, e.id)).get("status") for e in events])

    await eventually(all_dead)
    assert 5 == (await delivery(hooks, events[0].id))["attemptCount"]
    receiver.answer = lambda _: 204

    status, body = await hooks.call("POST", f"/webhooks/deliveries/{events[0].id}/replay", key=key)
    assert (202, [events[0].id]) == (status, body["deliveryIds"])

    async def first_delivered() -> bool:
        return "delivered" == (await delivery(hooks, events[0].id)).get("status")

    await eventually(first_delivered)

    status, body = await hooks.call(
        "POST",
        "/webhooks/replay",
        key=key,
        json={"instanceName": name, "since": "2020-01-01T00:00:00Z", "status": "dead"},
    )
    assert (202, 2) == (status, body["replayed"])

    async def all_delivered() -> bool:
        return all(["delivered" == (await delivery(hooks, e.id)).get("status") for e in events])

    await eventually(all_delivered)
    status, detail = await hooks.call("GET", f"/webhooks/deliveries/{events[1].id}", key=key)
    assert 200 == status
    assert [500] * 5 + [204] == [a["statusCode"] for a in detail["attempts"]]
    assert all(a["durationMs"] >= 0 for a in detail["attempts"])
    assert "message.received" == detail["payload"]["event"]


async def test_a_slow_endpoint_does_not_delay_another_tenants_deliveries(
    hooks: Gateway, events_broker: Broker
) -> None:
    slow, fast = Receiver().start(), Receiver().start()
    slow.delay = lambda _: 5.0
    try:
        slow_names = [await instance(hooks, slow.url()) for _ in range(6)]
        tenant, _, name = await instance(hooks, fast.url())
        slow_events = [received(t, n, i) for i in range(3) for t, _, n in slow_names]
        await events_broker.publish_many(slow_events)
        await slow.wait_for(lambda _: True, count=4)
        latencies = []
        for n in range(5):
            event = received(tenant, name, n)
            started = time.monotonic()
            await events_broker.publish(event)
            await fast.wait_for(with_id(event.id), timeout=10)
            latencies.append(time.monotonic() - started)
        assert max(latencies) < 2.0, latencies
        assert 4 == slow.max_in_flight
    finally:
        fast.stop()
        slow.stop()


async def test_first_attempts_keep_the_instance_event_order(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    tenant, _, name = await instance(hooks, receiver.url())
    events = [received(tenant, name, n) for n in range(15)]
    await events_broker.publish_many(events)
    await receiver.wait_for(lambda _: True, count=15)
    assert [e.id for e in events] == all_ids(receiver)


async def test_the_event_filter_and_the_message_webhook_override(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    override = Receiver().start()
    try:
        tenant, key, name = await instance(hooks, receiver.url())
        status, _ = await hooks.call(
            "PATCH",
            f"/instance/{name}",
            key=key,
            json={"webhookEvents": ["message.status", "message.received"]},
        )
        assert 200 == status
        status, accepted = await hooks.call(
            "POST",
            "/message/text",
            key=key,
            json={
                "instanceName": name,
                "to": "5491112345678",
                "text": "hi",
                "webhookUrl": override.url("/per-message"),
            },
        )
        assert 202 == status, accepted
        state = InstanceState(tenantId=tenant, instanceName=name, state="open")
        sent = MessageStatus(
            tenantId=tenant,
            instanceName=name,
            messageId=accepted["id"],
            status="sent",
            to="5491112345678",
            lane="normal",
        )
        inbound = received(tenant, name, 1)
        await events_broker.publish_many([state, sent, inbound])

        [to_override] = await override.wait_for(lambda _: True)
        await receiver.wait_for(lambda _: True)
        await asyncio.sleep(0.5)
        assert sent.id == to_override.headers["webhook-id"]
        body = to_override.body
        assert (
            hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            == (to_override.headers["x-gateway-signature"])
        )
        assert [inbound.id] == all_ids(receiver)
        async with hooks.mongo() as client:
            skipped = await client.lanegate_test.webhook_deliveries.find_one({"_id": state.id})
        assert skipped is None
        assert "sent" == json.loads(body)["data"]["status"]
    finally:
        override.stop()


async def test_the_ssrf_guard_refuses_loopback_and_metadata_targets(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    hooks.stack.stop("webhook_dispatcher")
    hooks.stack.env["LANEGATE_ALLOW_PRIVATE_TARGETS"] = "false"
    try:
        hooks.stack.start("webhook_dispatcher")
        targets = [
            receiver.url(),
            f"http://localhost:{receiver.port}/hook",
            "http://169.254.169.254/latest/meta-data/",
        ]
        events = []
        for url in targets:
            tenant, _, name = await instance(hooks, url)
            events.append(received(tenant, name, 1))
        await events_broker.publish_many(events)

        async def all_dead() -> bool:
            async with hooks.mongo() as client:
                found = client.lanegate_test.webhook_deliveries.find(
                    {"_id": {"$in": [e.id for e in events]}, "status": "dead"}
                )
                return 3 == len([r async for r in found])

        await eventually(all_dead)
        for event in events:
            record = await delivery(hooks, event.id)
            assert 1 == len(record["attempts"])
            assert record["lastError"].startswith("target refused")
        assert [] == receiver.requests
    finally:
        hooks.stack.stop("webhook_dispatcher")
        hooks.stack.env["LANEGATE_ALLOW_PRIVATE_TARGETS"] = "true"
        hooks.stack.start("webhook_dispatcher")
