"""Signed webhook deliveries per second from one dispatcher process, beside a bare client loop.

A receiver answering 204 runs in its own process on 127.0.0.1. In the same run
this measures (1) a bare aiohttp client loop posting the same body with the
same number of requests in flight, (2) the dispatcher's delivery engine
(per-endpoint pools, signing, POST, outcome) and (3) the whole dispatcher
handler with its delivery records in the store `LANEGATE_TEST_STORE` names (the
embedded wire store by default, far slower than MongoDB, which then bounds that line),
beside (4) the bare client loop writing a record of its own for each delivery in the same
store: inserted before the POST, marked delivered after it.

    python -m bench.webhooks [--deliveries 20000] [--endpoints 20]
"""

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web
from pymongo.asynchronous.collection import AsyncCollection

from devtools.stack import StoreEngine, free_port, lone_store, wait_port
from lanegate import logging as lanegate_logging
from lanegate import usage
from lanegate.events import MessageReceived
from lanegate.outbound import Outbound
from lanegate.secrets import Keyring, new_key
from lanegate.store import Document, Store
from webhook_dispatcher.attempt import post
from webhook_dispatcher.deliveries import Deliverer, Policy
from webhook_dispatcher.endpoints import EndpointPool, Job
from webhook_dispatcher.records import Records

SECRET = "bench-secret-bench-secret"
KEYRING = Keyring(new_key())  # stored sealed, as the services store it
CONCURRENCY = 4  # the dispatcher's default per endpoint
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def serve_receiver(port: int) -> None:
    """A receiver that reads the body and answers 204, on uvloop."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/{n}", hook)
    web.run_app(
        app, host="127.0.0.1", port=port, loop=uvloop.new_event_loop(), print=None, access_log=None
    )


def body(n: int) -> str:
    event = {
        "event": "message.status",
        "instanceName": "bench__support__main",
        "data": {"id": f"m-{n}", "status": "delivered", "to": "5491112345678", "lane": "normal"},
        "timestamp": "2026-03-15T10:30:00.000Z",
    }
    return json.dumps(event, separators=(",", ":"))


async def bare(
    base: str, count: int, endpoints: int, records: AsyncCollection[Document] | None = None
) -> float:
    """Requests per second of a plain aiohttp loop, CONCURRENCY x endpoints in flight; with
    `records`, each request keeps a record there: inserted before the POST, marked
    delivered after it."""
    connector = aiohttp.TCPConnector(limit=500)
    async with aiohttp.ClientSession(connector=connector) as http:
        queue = iter(range(count))

        async def worker() -> None:
            for n in queue:
                url, now = f"{base}/hook/{n % endpoints}", datetime.now(UTC)
                if records is not None:
                    await records.insert_one(
                        {
                            "_id": n,
                            "tenantId": "bench",
                            "instanceName": f"bench__support__{n % (endpoints * CONCURRENCY)}",
                            "url": url,
                            "status": "pending",
                            "createdAt": now,
                            "nextAttemptAt": now,
                        }
                    )
                async with http.post(
                    url, data=body(n).encode(), headers={"content-type": "application/json"}
                ) as response:
                    await response.read()
                if records is not None:
                    await records.update_one(
                        {"_id": n},
                        {"$set": {"status": "delivered", "nextAttemptAt": None, "at": now}},
                    )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY * endpoints)))
        return count / (time.perf_counter() - started)


async def engine(base: str, count: int, endpoints: int) -> float:
    """Signed deliveries per second through the endpoint pools and the attempt code."""
    timeout = aiohttp.ClientTimeout(total=10)
    failures = 0
    http = Outbound(allow_private=True, timeout=10, connections=500)
    try:

        async def run(job: Job) -> None:
            nonlocal failures
            outcome = await post(
                http,
                job.url,
                job.record["body"],
                webhook_id=job.record["_id"],
                secret=SECRET,
                limit=timeout,
            )
            failures += 0 if outcome.ok else 1

        pool = EndpointPool(run, concurrency=CONCURRENCY, backlog=count)
        started = time.perf_counter()
        for n in range(count):
            record = {
                "_id": f"evt-{n}",
                "url": f"{base}/hook/{n % endpoints}",
                "instanceName": f"bench__support__{n % (endpoints * CONCURRENCY)}",
                "body": body(n),
            }
            pool.submit(Job(record, "claim", FAR, first=True))
        await pool.join()
        seconds = time.perf_counter() - started
    finally:
        await http.close()
    if failures:
        raise RuntimeError(f"{failures} deliveries failed")
    return count / seconds


async def with_store(base: str, count: int, endpoints: int, store_uri: str) -> float:
    """Events per second through the dispatcher's handler, records in the store."""
    store = Store(store_uri, f"bench_{uuid.uuid4().hex[:8]}")
    await store.connect()
    for n in range(endpoints * CONCURRENCY):
        await store.instances.insert_one(
            {
                "_id": f"bench__support__{n}",
                "tenantId": "bench",
                "webhookUrl": f"{base}/hook/{n % endpoints}",
                "webhookSecret": KEYRING.encrypt(SECRET),
                "webhookEnabled": True,
            }
        )
    policy = Policy(timeout=10, schedule=(1,), jitter=0, disable_after=60)
    async with contextlib.AsyncExitStack() as cleanup:
        http = Outbound(allow_private=True, timeout=10)
        cleanup.push_async_callback(http.close)
        deliverer = Deliverer(
            Records(store, lease_seconds=40), http, policy, concurrency=4, keyring=KEYRING
        )
        events = [
            MessageReceived(
                tenantId="bench",
                instanceName=f"bench__support__{n % (endpoints * CONCURRENCY)}",
                sender="5491112345678",
                text=f"hello {n}",
                providerMessageId=f"P{n}",
                sentAt=1773596760,
            )
            for n in range(count)
        ]
        started = time.perf_counter()
        await asyncio.gather(*(deliverer.handle(event) for event in events))
        await deliverer.pool.join()
        await usage.grouped(store).write_held()  # the outcomes' counts, held a second, written
        seconds = time.perf_counter() - started
    delivered = await store.webhook_deliveries.count_documents({"status": "delivered"})
    await store.close()
    if delivered != count:
        raise RuntimeError(f"only {delivered} of {count} deliveries recorded as delivered")
    return count / seconds


async def bare_with_store(base: str, count: int, endpoints: int, store_uri: str) -> float:
    """The bare loop keeping a record of each request in the gateway's collection, with its
    indexes (those a retry poller and the listings need)."""
    store = Store(store_uri, f"bench_{uuid.uuid4().hex[:8]}")
    await store.connect()
    try:
        rate = await bare(base, count, endpoints, store.webhook_deliveries)
        delivered = await store.webhook_deliveries.count_documents({"status": "delivered"})
    finally:
        await store.close()
    if delivered != count:
        raise RuntimeError(f"only {delivered} of {count} bare records marked delivered")
    return rate


async def measure(base: str, args: argparse.Namespace, store_uri: str) -> None:
    await bare(base, 500, args.endpoints)  # warm up both sides
    bare_rate = await bare(base, args.deliveries, args.endpoints)
    engine_rate = await engine(base, args.deliveries, args.endpoints)
    store_rate = await with_store(base, args.stored, args.endpoints, store_uri)
    bare_store_rate = await bare_with_store(base, args.stored, args.endpoints, store_uri)
    print(
        f"webhooks: {args.deliveries} deliveries to {args.endpoints} endpoints,"
        f" {CONCURRENCY} in flight each"
    )
    print(f"  bare aiohttp client loop:        {bare_rate:8.0f} requests/s")
    print(
        f"  dispatcher engine (signed):      {engine_rate:8.0f} deliveries/s"
        f"  = {engine_rate / bare_rate:.0%} of bare"
    )
    print(f"  bare loop + a record each:       {bare_store_rate:8.0f} requests/s ({args.stored})")
    print(
        f"  dispatcher + store records:      {store_rate:8.0f} deliveries/s ({args.stored})"
        f"  = {store_rate / bare_store_rate:.0%} of bare with records"
    )


def spawn(args: list[str], port: int) -> subprocess.Popen[bytes]:
    """Start a helper process and wait until it listens on `port`."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL)
    wait_port(port, 30)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    parser.add_argument("--deliveries", type=int, default=20000)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--stored", type=int, default=300)
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.receiver:
        serve_receiver(args.receiver)
        return
    lanegate_logging.configure("WARNING", service="bench")
    receiver_port = free_port()
    receiver = spawn(["-m", "bench.webhooks", "--receiver", str(receiver_port)], receiver_port)
    try:
        log_dir = Path("var/bench-logs") / f"webhooks-{uuid.uuid4().hex[:8]}"
        with lone_store(log_dir, StoreEngine.from_environment(os.environ)) as store_uri:
            uvloop.run(measure(f"http://127.0.0.1:{receiver_port}", args, store_uri))
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    main()
