"""The broker's dead-letter queues, one per service queue: what waits there and why, put back on
its service queue or dropped. The operator command and the operator API both act through here."""

from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from lanegate.broker import ATTEMPT_HEADER, REASON_HEADER, TOPOLOGY, Broker
from lanegate.errors import NotFound

SERVICE_QUEUES = tuple(spec.name for spec in TOPOLOGY)


def dead_queue(broker: Broker, queue: str) -> str:
    """The full name of a service queue's dead-letter queue; 404 for a queue not in the
    topology."""
    if queue not in SERVICE_QUEUES:
        raise NotFound(f"No dead-letter queue {queue}: one of {', '.join(SERVICE_QUEUES)}")
    return f"{broker.queue_name(queue)}.dead"


def _row(queue: str, message: AbstractIncomingMessage) -> dict[str, Any]:
    headers = message.headers or {}
    reason = headers.get(REASON_HEADER)
    return {
        "queue": queue,
        "id": message.message_id,
        "kind": message.type,
        "attempts": headers.get(ATTEMPT_HEADER),
        "reason": reason.decode() if isinstance(reason, bytes) else reason,
    }


async def peek(broker: Broker, queue: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """How many messages wait in a dead-letter queue, and the first `limit` of them with the
    reason each carries: taken without an ack on a channel of their own, so they go back to
    the queue when it closes (a listing running at the same time sees the count, not them)."""
    name = dead_queue(broker, queue)
    channel = await broker.connection.channel()
    try:
        amqp_queue = await channel.declare_queue(name, passive=True)
        count = amqp_queue.declaration_result.message_count or 0
        rows: list[dict[str, Any]] = []
        while len(rows) < limit:
            message = await amqp_queue.get(no_ack=False, fail=False)
            if message is None:
                break
            rows.append(_row(queue, message))
        return count, rows
    finally:
        await channel.close()


async def replay(broker: Broker, queue: str, limit: int | None) -> int:
    """Put up to `limit` (None: every one there now) dead-lettered message back on its
    service queue with fresh attempts; returns how many went back."""
    name = dead_queue(broker, queue)
    replayed = 0
    channel = await broker.connection.channel()
    try:
        dead = await channel.declare_queue(name, passive=True)
        # No more than the queue held at the start: a replayed message that fails at once
        # comes back to it, and must not be replayed again in this same call.
        there = dead.declaration_result.message_count or 0
        while replayed < (there if limit is None else min(limit, there)):
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if k not in (ATTEMPT_HEADER, REASON_HEADER)
            }
            copy = aio_pika.Message(
                message.body,
                headers=headers,
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                type=message.type,
            )
            # Confirmed on the service queue before it leaves the dead-letter queue.
            await broker.send_to_queue(broker.queue_name(queue), copy)
            await message.ack()
            replayed += 1
    finally:
        await channel.close()
    return replayed


async def purge(broker: Broker, queue: str) -> int:
    """Drop every message of one dead-letter queue; returns how many were dropped."""
    name = dead_queue(broker, queue)
    channel = await broker.connection.channel()
    try:
        dead = await channel.declare_queue(name, passive=True)
        purged = await dead.purge()
        return int(purged.message_count or 0)
    finally:
        await channel.close()
