"""Send-to-phone latency of one-time codes on an instance with waiting bulk messages, beside
urgent texts on an idle instance of the same stack (the pipeline's own floor).

ingress-api, lane-scheduler and provider-sender (devtools.stack) with one tenant and two
sandbox instances whose urgent and bulk lanes keep a fixed gap (`--gap-ms`, no caps); one
holds `--bulk` waiting bulk messages. Each trial sends an OTP to a new number on the busy
instance and an urgent text on the idle one, and reads when the sandbox phone got each
(`sandbox_outbox.sentAt`, the sender's clock on this machine). The busy instance sends a bulk
message every gap, so an OTP waits for at most one gap: the target is p99 under gap + 100 ms.

    python -m bench.otp_latency [--bulk 1000] [--trials 50] [--gap-ms 500]

The store is the one `LANEGATE_TEST_STORE` names, as for the suite (mongoeco by default).
"""

import argparse
import asyncio
import random
import secrets
import statistics
import time
from datetime import datetime
from typing import Any

import aiohttp
import uvloop

from bench.otp import bench_stack, tenant
from lanegate.secrets import new_key
from lanegate.store import Store

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


class Client:
    """The tenant's calls to ingress-api."""

    def __init__(self, http: aiohttp.ClientSession, api: str, key: str) -> None:
        self._http, self._api, self._key = http, api, key

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The answer of a call, asked again after a 503 (the store too slow for a moment)."""
        headers = {"apikey": self._key}
        for _ in range(5):
            async with self._http.request(
                method, self._api + path, json=body, headers=headers
            ) as r:
                answer = await r.json()
                if r.status != 503:
                    break
            await asyncio.sleep(1)
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {answer}")
        return answer

    async def paced_instance(self, name: str, gap_ms: int) -> None:
        """A sandbox instance, scanned open, whose urgent and bulk lanes keep `gap_ms`."""
        lane = {"delayMs": [gap_ms, gap_ms], "perHour": 10**6, "perDay": 10**6}
        await self.call("PATCH", f"/instance/{name}", {"lanes": {"urgent": lane, "bulk": lane}})
        await self.call("POST", f"/sandbox/{name}/scan")
        while True:
            if (await self.call("GET", f"/instance/{name}/status"))["state"] == "open":
                return
            await asyncio.sleep(0.1)


async def on_phone(store: Store, message_id: str) -> datetime:
    """When the sandbox phone got the message."""
    while True:
        record = await store.sandbox_outbox.find_one({"_id": message_id})
        if record is not None:
            sent_at: datetime = record["sentAt"]
            return sent_at
        await asyncio.sleep(0.02)


async def trials(
    client: Client, store: Store, busy: str, idle: str, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    """Latencies (seconds) of the OTPs on the busy instance and the texts on the idle one."""
    otps, texts = [], []
    for n in range(args.trials):
        started = time.time()
        sent = await client.call(
            "POST", "/otp/send", {"instanceName": busy, "to": f"54911600{n:05d}"}
        )
        text_started = time.time()
        text = await client.call(
            "POST",
            "/message/text",
            {"instanceName": idle, "to": f"54911700{n:05d}", "text": "ping", "lane": "urgent"},
        )
        otps.append((await on_phone(store, sent["messageId"])).timestamp() - started)
        texts.append((await on_phone(store, text["id"])).timestamp() - text_started)
        # The idle instance's next text finds its gap passed; the busy one's OTP lands anywhere
        # in the bulk line's gap.
        await asyncio.sleep(args.gap_ms / 1000 * random.uniform(1.1, 1.6))
    return otps, texts


async def run(args: argparse.Namespace) -> None:
    secret, admin_key = new_key(), secrets.token_urlsafe(32)
    services = ("ingress_api", "lane_scheduler", "provider_sender")
    async with bench_stack(secret, admin_key, services) as (stack, store):
        api = stack.url("ingress_api")
        tenant_id, key, busy = await tenant(api, admin_key)
        async with aiohttp.ClientSession() as http:
            client = Client(http, api, key)
            idle = f"{tenant_id}__bench__idle"
            await client.call(
                "POST",
                "/instance/create",
                {
                    "instanceName": idle,
                    "webhookUrl": "http://127.0.0.1:9/hook",
                    "webhookSecret": "bench-secret-bench-secret",
                },
            )
            for name in (busy, idle):
                await client.paced_instance(name, args.gap_ms)
            messages = [
                {"instanceName": busy, "lane": "bulk", "to": f"54911800{n:05d}", "text": f"b{n}"}
                for n in range(args.bulk)
            ]
            for start in range(0, args.bulk, 250):
                page = messages[start : start + 250]
                await client.call("POST", "/message/bulk", {"messages": page})
            otps, texts = await trials(client, store, busy, idle, args)
            waiting = await store.messages.count_documents(
                {"instanceName": busy, "lane": "bulk", "status": "pending"}
            )
    report(args, otps, texts, waiting)


def report(args: argparse.Namespace, otps: list[float], texts: list[float], waiting: int) -> None:
    otp_ms, text_ms = [x * 1000 for x in otps], [x * 1000 for x in texts]
    print(
        f"{len(otps)} OTPs behind {args.bulk:,} bulk messages "
        f"({waiting:,} still waiting at the end)"
    )
    for label, values in (("OTP, busy instance", otp_ms), ("urgent text, idle", text_ms)):
        print(
            f"  {label}: p50 {statistics.median(values):.0f} ms, "
            f"p99 {percentile(values, 0.99):.0f} ms, max {max(values):.0f} ms"
        )
    target = args.gap_ms + 100
    p99 = percentile(otp_ms, 0.99)
    print(
        f"  OTP p99 {p99:.0f} ms against the target {target} ms (gap + 100 ms); "
        f"ratio to the idle text's p99 + gap: {p99 / (percentile(text_ms, 0.99) + args.gap_ms):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otp_latency")
    parser.add_argument("--bulk", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--gap-ms", type=int, default=500)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
