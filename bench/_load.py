"""A load generator in its own process: closed loop (N requests in flight, as fast as the
server answers) or open loop (requests started on a fixed schedule, latency measured from
each request's scheduled start so a slow answer cannot hide the requests queued behind it).

    python -m bench._load URL BODY_JSON [--key KEY] closed --concurrency 32 --seconds 8
    python -m bench._load URL BODY_JSON [--key KEY] open --rate 200 --seconds 10

Prints one JSON line: requests (and all sent, warm-up included), seconds, rate,
statuses and latency percentiles (ms).
"""

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any

import aiohttp
import uvloop

WARM_UP_SECONDS = 1.0
MAX_IN_FLIGHT = 2000  # an open-loop run that falls this far behind is reported as overload


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))]


class Load:
    """One session against one URL, recording statuses and latencies."""

    def __init__(self, url: str, body: bytes, key: str | None) -> None:
        self.url, self.body = url, body
        self.headers = {"content-type": "application/json", **({"apikey": key} if key else {})}
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.sent = 0
        self.http: aiohttp.ClientSession

    async def one(self, started: float, *, record: bool = True) -> None:
        self.sent += 1
        async with self.http.post(self.url, data=self.body, headers=self.headers) as response:
            await response.read()
        if record:
            self.statuses[response.status] += 1
            self.latencies.append(time.perf_counter() - started)

    async def closed(self, concurrency: int, seconds: float, limit: int) -> float:
        """Keep `concurrency` requests in flight for `seconds` (or `limit` requests)."""
        warm = time.perf_counter() + WARM_UP_SECONDS
        while time.perf_counter() < warm:
            await asyncio.gather(*(self.one(0, record=False) for _ in range(concurrency)))
        started = time.perf_counter()
        deadline, budget = started + seconds, iter(range(limit))

        async def worker() -> None:
            for _ in budget:
                if time.perf_counter() >= deadline:
                    return
                await self.one(time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started

    async def open(self, rate: float, seconds: float) -> float:
        """Start `rate` requests per second for `seconds`, whatever the answers do."""
        for _ in range(int(rate * WARM_UP_SECONDS)):
            await self.one(0, record=False)
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        for n in range(int(rate * seconds)):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= MAX_IN_FLIGHT:
                self.statuses[0] += 1  # not sent: the server is this far behind
                continue
            task = asyncio.create_task(self.one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return time.perf_counter() - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load = Load(args.url, args.body.encode(), args.key)
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector) as load.http:
        if args.mode == "closed":
            seconds = await load.closed(args.concurrency, args.seconds, args.limit)
        else:
            seconds = await load.open(args.rate, args.seconds)
    ms = sorted(x * 1000 for x in load.latencies)
    return {
        "requests": len(ms),
        "sent": load.sent,  # warm-up included
        "seconds": seconds,
        "rate": len(ms) / seconds,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "p50": percentile(ms, 0.5),
        "p99": percentile(ms, 0.99),
        "max": ms[-1] if ms else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._load")
    parser.add_argument("url")
    parser.add_argument("body")
    parser.add_argument("--key")
    parser.add_argument("--connections", type=int, default=64)
    sub = parser.add_subparsers(dest="mode", required=True)
    closed = sub.add_parser("closed")
    closed.add_argument("--concurrency", type=int, default=32)
    closed.add_argument("--seconds", type=float, default=8)
    closed.add_argument("--limit", type=int, default=100_000)
    opened = sub.add_parser("open")
    opened.add_argument("--rate", type=float, required=True)
    opened.add_argument("--seconds", type=float, default=10)
    print(json.dumps(uvloop.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
