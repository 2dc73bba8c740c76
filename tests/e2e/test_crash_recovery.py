"""Services die at the worst moment; messages are still sent, exactly once."""

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from tests.conftest import AMQP_URL
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e


async def _send(gateway: Gateway, key: str, name: str, text: str) -> str:
    status, body = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491100000002", "text": text, "lane": "urgent"},
    )
    assert 202 == status, body
    return str(body["id"])


async def _outbox_count(gateway: Gateway, message_id: str) -> int:
    async with gateway.mongo() as client:
        record = await client.lanegate_test.sandbox_outbox.find_one({"_id": message_id})
    return int(record["received"]) if record else 0


@pytest.mark.parametrize("service", ["lane_scheduler", "provider_sender"])
async def test_service_killed_between_accept_and_dispatch_still_sends_once(
    gateway: Gateway, receiver: Receiver, service: str
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())

    gateway.stack.kill(service)
    try:
        message_id = await _send(gateway, key, name, "sent across a crash")
        async with gateway.mongo() as client:
            stored = await client.lanegate_test.messages.find_one({"_id": message_id})
        assert stored is not None and stored["status"] in ("pending", "dispatching")
        assert 0 == await _outbox_count(gateway, message_id)
    finally:
        gateway.stack.start(service)

    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    _, message = await gateway.call("GET", f"/message/{message_id}", key=key)
    assert "sent" == message["status"]
    assert 1 == await _outbox_count(gateway, message_id)
    assert 1 == len(receiver.matching(event_named("message.status", id=message_id, status="sent")))


async def test_sigterm_stops_a_service_cleanly(gateway: Gateway) -> None:
    assert 0 == gateway.stack.stop("webhook_dispatcher")
    gateway.stack.start("webhook_dispatcher")


@pytest.mark.parametrize(
    ("queue", "service"),
    [
        ("lane-scheduler", "lane_scheduler"),
        ("provider-sender", "provider_sender"),
        ("webhook-dispatcher", "webhook_dispatcher"),
        ("template-sync", "template_sync"),
    ],
)
async def test_malformed_event_is_dead_lettered_with_its_reason_and_consuming_goes_on(
    gateway: Gateway, receiver: Receiver, queue: str, service: str
) -> None:
    full = f"{gateway.namespace}.{queue}"
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        poison = aio_pika.Message(
            b'{"kind": "message.accepted", "messageId": 42}', message_id="poison"
        )
        await channel.default_exchange.publish(poison, routing_key=full)

        dead = await channel.get_queue(f"{full}.dead")
        found: list[AbstractIncomingMessage] = []

        async def dead_lettered() -> bool:
            # The queue itself, not the counter: an earlier test on this stack may have
            # dead-lettered on the same queue (its message is taken out of the way).
            message = await dead.get(timeout=5, fail=False)
            if message is not None and message.message_id == "poison":
                found.append(message)
            elif message is not None:
                await message.ack()
            return bool(found)

        await eventually(dead_lettered)
        [message] = found
        assert await gateway.metric(
            service, "lanegate_events_consumed_total", queue=full, outcome="dead"
        )
        assert b'{"kind": "message.accepted", "messageId": 42}' == message.body
        reason = str((message.headers or {})["x-lanegate-reason"])
        assert reason.startswith("invalid event:")
        assert "messageId" in reason
        await message.ack()

    # The consumer is still there: the whole path keeps working.
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    message_id = await _send(gateway, key, name, "after the poison")
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
