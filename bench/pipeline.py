"""Messages through the whole gateway: accepted to sent per second, accept-to-sent p50 and p99,
the CPU each process spends per message and the store commands a message costs.

All five services (devtools.stack) on the store `LANEGATE_TEST_STORE` names (mongoeco by
default), one tenant, `--instances` sandbox instances scanned open whose urgent lane has no
gap and no caps, each with a webhook on a receiver of its own process (answering 204), so
webhook-dispatcher posts every event. First `--singles` urgent texts go one a request, 32 in
flight (the p50 and p99 of their answers are reported), then `--messages` more in bulk
requests of 1,000 spread over the instances, one request at a time; the clock runs from the
first request to the last message `sent`. Accept-to-sent is each message's
`sentAt - createdAt`.

Beside it, in the same run, the bare line: as many messages through the same store and
RabbitMQ from this process, with none of the gateway: inserted 1,000 at a time, each published
with a confirm to a quorum queue, consumed (32 unacknowledged at most) and marked sent. That is
the least a durable queue of messages costs here; the ratio is the gateway's share of it.

Then (`--counted`, 0 to skip) the services start again with their store connections through a
counting proxy (bench/_wire_counter.py) and that many more messages go the same way: the store
commands per message over its whole life (accept, scheduling, claim, send, receipts, webhook
records), background work (leases, heartbeats, counters) included, until the webhooks of
every message's three receipts are delivered.

    python -m bench.pipeline [--singles 500] [--messages 10000] [--instances 20] [--counted 1000]
"""

import argparse
import asyncio
import secrets
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiohttp
import uvloop
from pymongo.asynchronous.collection import AsyncCollection

from bench._wire_counter import MONITORING, WireCounter
from bench.ingress import cpu_seconds, postgresql_cpu_seconds
from bench.otp import AMQP_URL, bench_stack, tenant
from bench.otp_latency import Client, percentile
from bench.webhooks import spawn
from devtools.stack import SERVICES, Stack, free_port
from lanegate import usage
from lanegate.events import new_id
from lanegate.secrets import new_key
from lanegate.store import Document, Store

PAGE = 1000
PERSISTENT = aio_pika.DeliveryMode.PERSISTENT
WRITES = frozenset({"insert", "update", "delete", "findAndModify"})


async def instances(client: Client, tenant_id: str, hook: str, count: int) -> list[str]:
    """`count` sandbox instances, scanned open, whose lanes have no gap and no caps to speak of."""
    names = [f"{tenant_id}__bench__n{n:02d}" for n in range(count)]
    for name in names:
        body = {"instanceName": name, "webhookUrl": hook, "webhookSecret": "bench-secret-bench"}
        await client.call("POST", "/instance/create", body)
        await client.paced_instance(name, 0)
    return names


async def singles(
    http: aiohttp.ClientSession, api: str, key: str, names: list[str], count: int
) -> list[float]:
    """Queue `count` urgent texts one a request, 32 in flight; each answer's seconds."""
    numbers, took = iter(range(count)), []

    async def worker() -> None:
        for n in numbers:
            body = {"instanceName": names[n % len(names)], "to": f"549115{n:07d}", "text": f"s {n}"}
            started = time.perf_counter()
            async with http.post(
                f"{api}/message/text", json=body | {"lane": "urgent"}, headers={"apikey": key}
            ) as r:
                if r.status != 202:
                    raise RuntimeError(f"single send: {r.status} {await r.text()}")
            took.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(32)))
    return took


async def send(client: Client, names: list[str], count: int, tag: str) -> float:
    """Queue `count` urgent texts over the instances in bulk requests; seconds to accept all."""
    started = time.perf_counter()
    for start in range(0, count, PAGE):
        page = [
            {
                "instanceName": names[n % len(names)],
                "to": f"549116{n:07d}",
                "text": f"{tag} {n}",
                "lane": "urgent",
            }
            for n in range(start, min(count, start + PAGE))
        ]
        await client.call("POST", "/message/bulk", {"messages": page})
    return time.perf_counter() - started


async def all_sent(store: Store, tenant_id: str, count: int, deadline: float) -> None:
    """Wait until the tenant has `count` messages `sent` (or fail past `deadline` s)."""
    limit, match = time.monotonic() + deadline, {"tenantId": tenant_id, "status": "sent"}
    while (sent := await store.messages.count_documents(match)) < count:
        if time.monotonic() > limit:
            raise TimeoutError(f"{sent:,} of {count:,} sent after {deadline:g} s")
        await asyncio.sleep(1)


async def all_reported(store: Store, count: int, deadline: float) -> None:
    """Wait until the webhooks of `count` messages' three receipts (sent, delivered, read) are
    delivered (or fail past `deadline` s)."""
    limit, match = time.monotonic() + deadline, {"event": "message.status", "status": "delivered"}
    while (done := await store.webhook_deliveries.count_documents(match)) < 3 * count:
        if time.monotonic() > limit:
            raise TimeoutError(f"{done:,} of {3 * count:,} webhooks delivered after {deadline:g} s")
        await asyncio.sleep(1)


async def lifetimes(messages: AsyncCollection[Document]) -> tuple[float, list[float]]:
    """When the last sent message went (epoch seconds), and each one's `sentAt - createdAt`."""
    found = messages.find({"status": "sent"}, {"createdAt": 1, "sentAt": 1})
    times = [(m["createdAt"], m["sentAt"]) async for m in found]
    last = max(sent for _, sent in times).replace(tzinfo=UTC).timestamp()
    return last, [(sent - created).total_seconds() for created, sent in times]


def cpu(stack: Stack) -> dict[str, float]:
    """CPU used so far by each process of the stack, and by PostgreSQL under FerretDB."""
    used = {name: cpu_seconds(p.pid) for name, p in stack.processes.items()}
    if stack.store.engine == "ferretdb":
        used["postgresql"] = postgresql_cpu_seconds()
    return used


async def gateway(
    stack: Stack,
    store: Store,
    http: aiohttp.ClientSession,
    key: str,
    names: list[str],
    args: argparse.Namespace,
) -> Any:
    """The timed pass: rate, latencies and CPU per message of each process."""
    api, total = stack.url("ingress_api"), args.singles + args.messages
    before, wall = cpu(stack), time.time()
    answers = await singles(http, api, key, names, args.singles) if args.singles else []
    accept_seconds = await send(Client(http, api, key), names, args.messages, "timed")
    await all_sent(store, tenant_of(names), total, args.deadline)
    after = cpu(stack)
    last, latencies = await lifetimes(store.messages)
    return {
        "rate": total / (last - wall),
        "accept_rate": args.messages / accept_seconds,
        "singles": answers,
        "latencies": latencies,
        "cpu_ms": {k: (after[k] - before[k]) * 1000 / total for k in after if k in before},
    }


def tenant_of(names: list[str]) -> str:
    return names[0].split("__")[0]


async def bare(stack: Stack, store: Store, count: int) -> dict[str, Any]:
    """The same count through the same store and broker with none of the gateway."""
    messages = store.db["bare_messages"]
    connection = await aio_pika.connect(AMQP_URL)
    queue_name = f"{stack.env['LANEGATE_NAMESPACE']}.bare"
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=32)
        queue = await channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        done = asyncio.Event()
        marked = 0

        async def consume(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal marked
            await messages.update_one(
                {"_id": message.body.decode()},
                {"$set": {"status": "sent", "sentAt": datetime.now(UTC)}},
            )
            await message.ack()
            marked += 1
            if marked == count:
                done.set()

        tag = await queue.consume(consume)
        started = time.time()
        for start in range(0, count, PAGE):
            ids, now = [new_id() for _ in range(min(PAGE, count - start))], datetime.now(UTC)
            await messages.insert_many(
                [{"_id": i, "status": "pending", "createdAt": now} for i in ids]
            )
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(i.encode(), delivery_mode=PERSISTENT),
                        routing_key=queue_name,
                    )
                    for i in ids
                )
            )
        await done.wait()
        last, latencies = await lifetimes(messages)
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    return {"rate": count / (last - started), "latencies": latencies}


async def counted(
    stack: Stack, store: Store, client: Client, names: list[str], args: argparse.Namespace
) -> Any:
    """Store commands per message, the services' store connections through a counting proxy."""
    counter = WireCounter(stack.store_port)
    port = await counter.start()
    try:
        for name in SERVICES:
            stack.stop(name)
        proxied = {"LANEGATE_MONGO_URI": stack.store.local_uri(port)}
        for name in SERVICES:
            stack.start(name, wait=False, env=proxied)
        await asyncio.to_thread(stack.wait_ready)
        await asyncio.sleep(5)  # past the starts' own reads and index checks
        counter.reset()
        await send(client, names, args.counted, "counted")
        total = args.singles + args.messages + args.counted
        await all_sent(store, tenant_of(names), total, args.deadline)
        await all_reported(store, total, args.deadline)
        await asyncio.sleep(2 * usage.WRITTEN_EVERY.total_seconds())  # the counts held last
        commands = Counter({k: v for k, v in counter.commands.items() if k not in MONITORING})
        writes = Counter(
            {
                f"{name} {target}": n
                for (name, target), n in counter.by_collection.items()
                if name in WRITES
            }
        )
    finally:
        await counter.close()
    return {
        "commands": {k: n / args.counted for k, n in commands.most_common()},
        "writes": {k: n / args.counted for k, n in writes.most_common()},
    }


async def run(args: argparse.Namespace) -> None:
    secret, admin_key = new_key(), secrets.token_urlsafe(32)
    hook_port = free_port()
    hooks = spawn(["-m", "bench.webhooks", "--receiver", str(hook_port)], hook_port)
    try:
        async with bench_stack(secret, admin_key, tuple(SERVICES)) as (stack, store):
            api = stack.url("ingress_api")
            tenant_id, key, _ = await tenant(api, admin_key)
            async with aiohttp.ClientSession() as http:
                client = Client(http, api, key)
                hook = f"http://127.0.0.1:{hook_port}/hook/1"
                names = await instances(client, tenant_id, hook, args.instances)
                timed = await gateway(stack, store, http, key, names, args)
                baseline = await bare(stack, store, args.singles + args.messages)
                commands = (
                    await counted(stack, store, client, names, args) if args.counted else None
                )
    finally:
        hooks.terminate()
        hooks.wait()
    report(args, timed, baseline, commands)


def report(args: argparse.Namespace, timed: Any, baseline: Any, counts: Any) -> None:
    def latency(values: list[float]) -> str:
        return (
            f"p50 {statistics.median(values) * 1000:.0f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:.0f} ms"
        )

    print(
        f"{args.singles:,} single and {args.messages:,} bulk urgent texts over "
        f"{args.instances} sandbox instances"
    )
    if timed["singles"]:
        print(f"  single sends answered: {latency(timed['singles'])}")
    print(
        f"  gateway: {timed['rate']:.1f} messages/s accepted to sent "
        f"(bulks accepted at {timed['accept_rate']:.0f}/s), accept to sent "
        f"{latency(timed['latencies'])}"
    )
    print(f"  bare store and broker: {baseline['rate']:.1f}/s, {latency(baseline['latencies'])}")
    print(f"  ratio: {timed['rate'] / baseline['rate']:.2f}")
    print(
        "  CPU per message: "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in timed["cpu_ms"].items())
    )
    if counts:
        commands, writes = counts["commands"], counts["writes"]
        print(
            f"  store commands per message ({args.counted:,} counted): "
            f"{sum(commands.values()):.1f}, of which writes {sum(writes.values()):.1f} ("
            + ", ".join(f"{name} {n:.2f}" for name, n in commands.items())
            + ")"
        )
        print(
            "  writes per message by collection: "
            + ", ".join(f"{name} {n:.2f}" for name, n in writes.items())
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline")
    parser.add_argument("--singles", type=int, default=500)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--counted", type=int, default=1000)
    parser.add_argument("--deadline", type=float, default=3600, help="seconds to wait for sends")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
