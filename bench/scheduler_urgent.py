"""An urgent message dropped into an instance with 10,000 waiting bulk messages: how long after
the instance's next free slot is it dispatched? Real scheduler, wire store and RabbitMQ.

Run: .venv/bin/python -m bench.scheduler_urgent [--bulk 10000] [--trials 100]
(needs the local RabbitMQ at 127.0.0.1:5672; starts its own store of the engine
`LANEGATE_TEST_STORE` names, mongoeco by default)
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

from devtools.stack import StoreEngine, delete_topology, lone_store
from lane_scheduler.scheduler import Scheduler
from lanegate import events
from lanegate.broker import Broker
from lanegate.events import MessageAccepted, MessageStatus
from lanegate.store import Store

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
INSTANCE = "bench__support__main"
URGENT_GAP, BULK_GAP = 0.1, 0.15


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def run(store: Store, broker: Broker, bulk: int, trials: int) -> list[float]:
    await store.instances.insert_one(
        {
            "_id": INSTANCE,
            "tenantId": "bench",
            "provider": "sandbox",
            "state": "open",
            "lanes": {
                "urgent": {"delayMs": [URGENT_GAP * 1000] * 2},
                "bulk": {"delayMs": [BULK_GAP * 1000] * 2, "perHour": 10**6, "perDay": 10**6},
            },
        }
    )
    now = time.time()
    await store.messages.insert_many(
        [
            {
                "_id": str(uuid.uuid4()),
                "tenantId": "bench",
                "instanceName": INSTANCE,
                "to": "5491100000005",
                "lane": "bulk",
                "priority": 5,
                "status": "pending",
                "queuedAt": _at(now - bulk + n),
                "createdAt": _at(now),
            }
            for n in range(bulk)
        ]
    )
    scheduler = Scheduler(store, broker, replica="bench", dispatch_timeout=60, lease_seconds=6)
    await scheduler.start()
    dispatches: asyncio.Queue[tuple[float, events.MessageDispatch]] = asyncio.Queue()
    channel = await broker.connection.channel()
    queue = await channel.get_queue(broker.queue_name("provider-sender"))

    async def on_dispatch(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        arrived = time.time()
        event = events.parse(message.body)
        await message.ack()
        if isinstance(event, events.MessageDispatch):
            await dispatches.put((arrived, event))

    await queue.consume(on_dispatch)

    async def sent(event: events.MessageDispatch) -> float:
        """Play provider-sender: record the send, report it to the scheduler."""
        at = time.time()
        await store.messages.update_one(
            {"_id": event.messageId}, {"$set": {"status": "sent", "sentAt": _at(at)}}
        )
        await scheduler.handle(
            MessageStatus(
                occurredAt=_at(at),
                tenantId="bench",
                instanceName=INSTANCE,
                messageId=event.messageId,
                status="sent",
                to="5491100000005",
                lane=event.lane,
            )
        )
        return at

    latencies = []
    try:
        for _ in range(trials):
            _, bulk_dispatch = await dispatches.get()
            assert bulk_dispatch.lane == "bulk"
            sent_at = await sent(bulk_dispatch)
            urgent = str(uuid.uuid4())
            accepted = time.time()
            await store.messages.insert_one(
                {
                    "_id": urgent,
                    "tenantId": "bench",
                    "instanceName": INSTANCE,
                    "to": "5491100000006",
                    "lane": "urgent",
                    "priority": 5,
                    "status": "pending",
                    "queuedAt": _at(accepted),
                    "createdAt": _at(accepted),
                }
            )
            await scheduler.handle(
                MessageAccepted(
                    occurredAt=_at(accepted),
                    tenantId="bench",
                    instanceName=INSTANCE,
                    messageId=urgent,
                    lane="urgent",
                )
            )
            arrived, dispatch = await dispatches.get()
            assert dispatch.messageId == urgent, "the urgent message did not jump the bulk line"
            free_slot = max(accepted, sent_at + URGENT_GAP)
            latencies.append(arrived - free_slot)
            await sent(dispatch)
    finally:
        await scheduler.stop()
        await channel.close()
    return latencies


async def measure(store_uri: str, bulk: int, trials: int) -> list[float]:
    """Latencies (seconds) of `trials` urgent messages against the store at `store_uri`."""
    namespace = f"lgbench-{uuid.uuid4().hex[:8]}"
    broker = Broker(AMQP_URL, namespace)
    try:
        store = Store(store_uri, "bench")
        await store.connect()
        await broker.connect()
        latencies = await run(store, broker, bulk, trials)
        await store.close()
    finally:
        await delete_topology(AMQP_URL, namespace)
        await broker.close()
    return latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.scheduler_urgent")
    # 10,000 bulk messages take the embedded store minutes to insert; 2,000 is the README's run.
    parser.add_argument("--bulk", type=int, default=2_000)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args(argv if argv is not None else [])
    with lone_store(
        Path("var/bench-logs") / f"lgstore-{uuid.uuid4().hex[:8]}",
        StoreEngine.from_environment(os.environ),
    ) as store_uri:
        latencies = asyncio.run(measure(store_uri, args.bulk, args.trials))
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)) - 1)]
    print(f"{len(ms)} urgent messages, each behind {args.bulk:,} waiting bulk messages")
    print(
        f"dispatched after the next free slot: p50 {statistics.median(ms):.1f} ms, "
        f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
