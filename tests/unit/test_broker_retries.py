"""Retries against the real broker: an uncounted retry spends none of the event's attempts."""

import pytest

from lanegate import events
from lanegate.broker import Broker, Consumer, Retry
from tests.support.gateway import eventually

pytestmark = pytest.mark.e2e


async def _retried_three_times(broker: Broker, *, counted: bool) -> tuple[int, int]:
    """An event retried three times by a consumer allowing two attempts: how many times it
    was then handled, and how many copies went to the dead-letter queue."""
    handled = 0
    retries = 0

    async def handler(event: events.AnyEvent) -> None:
        nonlocal handled, retries
        if retries < 3:
            retries += 1
            raise Retry(after=1, reason="waiting for an owner", counted=counted)
        handled += 1

    consumer = Consumer(broker, "lane-scheduler", handler, prefetch=1, max_attempts=2)
    await consumer.start()
    event = events.InstancePaused(tenantId="t", instanceName="retried", reason="test")
    dead: list[str] = []
    channel = await broker.connection.channel()
    try:
        queue = await channel.get_queue(broker.queue_name("lane-scheduler.dead"))
        await broker.publish_later(event, "lane-scheduler", after=0)

        async def settled() -> bool:
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                dead.append(str(message.message_id))
            return bool(handled or dead)

        await eventually(settled, timeout=30)
    finally:
        await channel.close()
        await consumer.stop(grace=1)
    assert set(dead) <= {event.id}
    return handled, len(dead)


async def test_an_uncounted_retry_spends_no_attempt(bare_broker: Broker) -> None:
    assert (1, 0) == await _retried_three_times(bare_broker, counted=False)


async def test_a_counted_retry_gives_up_after_the_last_attempt(bare_broker: Broker) -> None:
    assert (0, 1) == await _retried_three_times(bare_broker, counted=True)
