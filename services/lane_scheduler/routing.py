"""Getting each scheduler event to the replica that owns its instance."""

import asyncio
import time

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import PublishError
from pydantic import ValidationError

from lane_scheduler.ownership import Ownership
from lanegate import events
from lanegate.broker import (
    ATTEMPT_HEADER,
    REASON_HEADER,
    Broker,
    EventHandler,
    Retry,
    retry_queue_for,
)

log = structlog.get_logger(__name__)

QUEUE = "lane-scheduler"
WAIT_FOR_OWNER_SECONDS = 12.0
OWNER_POLL_SECONDS = 0.25


class Router:
    """Handles owned events, forwards the rest, and consumes this replica's private queue.

    Replicas share the durable `lane-scheduler` queue. A replica handles the
    events of its own instances and forwards the others to their owner's private
    queue; while an instance has no live owner (a replica just died) the event
    waits in a retry queue, spending none of its attempts: events are hints over the
    store, which a new owner reads when it takes over, so one may come late but is
    never given up on.
    """

    def __init__(self, broker: Broker, ownership: Ownership, handle: EventHandler) -> None:
        self._broker = broker
        self._ownership = ownership
        self._handle = handle
        self._channel: AbstractChannel | None = None

    def replica_queue(self, replica: str) -> str:
        """The private queue of a replica."""
        return self._broker.queue_name(f"{QUEUE}.replica.{replica}")

    async def start(self) -> None:
        """Declare this replica's private queue (gone with its connection) and consume it."""
        connection = self._broker.connection
        # Returns raise, so a forward to a replica that just died is retried, not dropped.
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await self._channel.declare_queue(
            self.replica_queue(self._ownership.replica), exclusive=True, auto_delete=True
        )
        await queue.consume(self._on_forwarded)

    async def stop(self) -> None:
        """Close the private channel (its queue goes when the connection closes)."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def route(self, event: events.AnyEvent) -> None:
        """The shared queue's handler: handle an owned instance's event, forward any other."""
        # While an instance changes hands (a dead owner's lease runs out) the event waits
        # here, so a failover does not spend the event's retry attempts.
        deadline = time.monotonic() + WAIT_FOR_OWNER_SECONDS
        while True:
            owner = self._ownership.owner_of(event.instanceName)
            if owner == self._ownership.replica:
                await self._handle(event)
                return
            if owner is not None and await self._forward(owner, event):
                return
            if time.monotonic() > deadline:
                raise Retry(
                    after=1,
                    reason=f"no live replica took the instance (last: {owner})",
                    counted=False,
                )
            await asyncio.sleep(OWNER_POLL_SECONDS)

    async def _forward(self, owner: str, event: events.AnyEvent) -> bool:
        if self._channel is None:
            return False
        message = aio_pika.Message(
            events.encode(event),
            content_type="application/json",
            message_id=event.id,
            type=event.kind,
        )
        try:
            await self._channel.default_exchange.publish(
                message, routing_key=self.replica_queue(owner), mandatory=True
            )
        except PublishError:
            return False  # its queue is gone: the owner died and its lease will run out
        return True

    async def _on_forwarded(self, message: AbstractIncomingMessage) -> None:
        try:
            event = events.parse(message.body)
        except ValidationError:
            log.warning("unreadable forwarded event dropped", event_id=message.message_id)
            await message.ack()
            return
        try:
            if self._ownership.owner_of(event.instanceName) != self._ownership.replica:
                # Moved again meanwhile: wait a second for fresher leases, never bounce straight.
                raise Retry(
                    after=1, reason="forwarded to a replica that no longer owns it", counted=False
                )
            await self._handle(event)
        except Exception as e:
            # Back through the shared queue's retry queue, like any retried event.
            attempt = int(str((message.headers or {}).get(ATTEMPT_HEADER, 0)))
            if not isinstance(e, Retry) or e.counted:
                attempt += 1
            copy = aio_pika.Message(
                message.body,
                headers={ATTEMPT_HEADER: attempt, REASON_HEADER: repr(e)},
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                type=message.type,
            )
            retry_queue, _ = retry_queue_for(self._broker.queue_name(QUEUE), 1)
            await self._broker.send_to_queue(retry_queue, copy)
        await message.ack()
