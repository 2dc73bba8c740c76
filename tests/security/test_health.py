"""`GET /health` answers from counts refreshed in the background, never a count per call."""

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bench._wire_counter import WireCounter
from devtools.stack import free_port
from tests.support.gateway import Gateway, eventually

pytestmark = pytest.mark.e2e

REFRESH_SECONDS = 2.0
# Commands a count is sent as (count_documents is an aggregation on the wire).
COUNTING = ("aggregate", "count")


@contextlib.asynccontextmanager
async def counted_ingress(gateway: Gateway) -> AsyncIterator[tuple[str, WireCounter]]:
    """One more ingress-api process whose store commands pass through a counting proxy."""
    counter = WireCounter(gateway.stack.store_port)
    proxy = await counter.start()
    port = free_port()
    env = {
        **gateway.stack.env,
        "LANEGATE_MONGO_URI": f"mongodb://127.0.0.1:{proxy}/?directConnection=true",
        "LANEGATE_INGRESS_PORT": str(port),
        "LANEGATE_HEALTH_REFRESH_SECONDS": str(REFRESH_SECONDS),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingress_api",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: _ready(url), timeout=60, every=0.2)
        yield url, counter
    finally:
        process.terminate()
        await process.wait()
        await counter.close()


async def _ready(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _health(http: aiohttp.ClientSession, url: str) -> dict[str, int]:
    async with http.get(url + "/health") as response:
        assert 200 == response.status
        body: dict[str, int] = await response.json()
        return body


async def test_a_flood_of_health_checks_costs_the_store_no_counts(gateway: Gateway) -> None:
    async with counted_ingress(gateway) as (url, counter), aiohttp.ClientSession() as http:
        counter.reset()
        started = time.monotonic()
        answers = await asyncio.gather(*(_health(http, url) for _ in range(300)))
        elapsed = time.monotonic() - started

        assert {"status", "tenants", "instances", "queuedMessages", "uptime"} == answers[0].keys()
        counts = sum(counter.commands[name] for name in COUNTING)
        refreshes = int(elapsed / REFRESH_SECONDS) + 1
        assert counts <= 3 * refreshes, (counts, elapsed, dict(counter.commands))


async def test_the_health_figures_follow_changes_within_the_refresh_interval(
    gateway: Gateway,
) -> None:
    async with counted_ingress(gateway) as (url, _), aiohttp.ClientSession() as http:
        before = await _health(http, url)
        await gateway.tenant()
        await gateway.tenant()

        async def counted_both() -> bool:
            return (await _health(http, url))["tenants"] >= before["tenants"] + 2

        await eventually(counted_both, timeout=REFRESH_SECONDS * 5, every=0.1)
