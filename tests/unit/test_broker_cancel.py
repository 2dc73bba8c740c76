"""A handler cancelled because the broker connection dropped ends cancelled, not with the
error of a nack that had no channel left (which aio-pika logs as a failed callback)."""

import asyncio

import pytest
from aio_pika.exceptions import ChannelInvalidStateError

from lanegate import events
from lanegate.broker import Broker, Consumer


class OrphanedDelivery:
    """A delivery whose channel closed under it: settling it raises, as aio-pika's does."""

    def __init__(self, event: events.Event) -> None:
        self.body = events.encode(event)
        self.headers: dict[str, str] = {}
        self.message_id = event.id
        self.nacked = 0

    async def nack(self, requeue: bool) -> None:
        self.nacked += 1
        raise ChannelInvalidStateError("channel closed")


async def test_a_handler_cancelled_with_its_channel_ends_cancelled() -> None:
    entered = asyncio.Event()

    async def handler(event: events.AnyEvent) -> None:
        entered.set()
        await asyncio.Event().wait()

    consumer = Consumer(Broker("amqp://unused", "t"), "q", handler, prefetch=1, max_attempts=3)
    delivery = OrphanedDelivery(events.InstancePaused(tenantId="t", instanceName="i", reason="r"))
    handling = asyncio.create_task(consumer._process(delivery))  # type: ignore[arg-type]
    await entered.wait()
    handling.cancel()

    with pytest.raises(asyncio.CancelledError):
        await handling
    assert 1 == delivery.nacked
