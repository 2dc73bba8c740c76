"""Talking to a running stack from tests: the HTTP API, the store and the broker."""

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import aio_pika
import aiohttp
from pymongo import AsyncMongoClient

from devtools.stack import Stack
from lanegate.broker import Broker

FAST_LANES = {
    "urgent": {"delayMs": [50, 100]},
    "normal": {"delayMs": [100, 200]},
    "bulk": {"delayMs": [150, 300]},
}


class TenantInstance(NamedTuple):
    """A new tenant, its API key and its one instance."""

    tenant_id: str
    key: str
    name: str


@dataclass
class Gateway:
    """One running stack, its operator key and its namespace."""

    stack: Stack
    admin_key: str
    namespace: str

    @property
    def api(self) -> str:
        return self.stack.url("ingress_api")

    async def call(
        self, method: str, path: str, *, key: str | None = None, json: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        """One API request; returns the status and the decoded JSON body (or None). It comes
        through the tests' trusted proxy from a client address of its own (unless `headers`
        name one), so failed sign-ins of unrelated tests never add up to one address's limit."""
        headers = dict(kw.pop("headers", {}))
        headers.setdefault(
            "X-Forwarded-For", f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
        )
        if key is not None:
            headers["apikey"] = key
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.api + path, json=json, headers=headers, **kw) as response,
        ):
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, body

    async def tenant(self, tenant_id: str | None = None) -> tuple[str, str]:
        """Create a tenant with a unique id; returns (id, api key)."""
        tenant_id = tenant_id or f"t{uuid.uuid4().hex[:10]}"
        status, body = await self.call(
            "POST",
            "/admin/tenants",
            json={"id": tenant_id, "name": tenant_id},
            headers={"apikey": self.admin_key},
        )
        assert status == 201, body
        return tenant_id, body["apiKey"]

    async def instance(
        self,
        tenant_id: str,
        key: str,
        webhook_url: str,
        *,
        connect: bool = True,
        lanes: dict[str, Any] | None = None,
        name: str | None = None,
        webhook_secret: str = "s3cret-s3cret-s3cret",
        fields: dict[str, Any] | None = None,
    ) -> str:
        """Create an instance with fast lanes and `fields` (a sandbox one unless they name a
        provider); scan it open unless told not to."""
        name = name or f"{tenant_id}__support__{uuid.uuid4().hex[:6]}"
        status, body = await self.call(
            "POST",
            "/instance/create",
            key=key,
            json={
                "instanceName": name,
                "webhookUrl": webhook_url,
                "webhookSecret": webhook_secret,
                "lanes": lanes or FAST_LANES,
            }
            | (fields or {}),
        )
        assert status == 201, body
        if connect:
            status, body = await self.call("POST", f"/sandbox/{name}/scan", key=key)
            assert status == 202, body
            await eventually(lambda: self._state_is(name, key, "open"))
        return name

    async def tenant_with_instance(
        self,
        webhook_url: str,
        *,
        connect: bool = True,
        webhook_secret: str = "s3cret-s3cret-s3cret",
        fields: dict[str, Any] | None = None,
    ) -> TenantInstance:
        """A new tenant with one instance made as `instance` makes it."""
        tenant_id, key = await self.tenant()
        name = await self.instance(
            tenant_id,
            key,
            webhook_url,
            connect=connect,
            webhook_secret=webhook_secret,
            fields=fields,
        )
        return TenantInstance(tenant_id, key, name)

    async def _state_is(self, name: str, key: str, state: str) -> bool:
        _, body = await self.call("GET", f"/instance/{name}/status", key=key)
        return bool(body["state"] == state)

    @property
    def store_uri(self) -> str:
        """The wire store's address, for a client or a `Store` of a test's own."""
        return self.stack.store_uri

    def mongo(self) -> AsyncMongoClient[dict[str, Any]]:
        return AsyncMongoClient(self.store_uri, tz_aware=True)

    async def ready(self, process: str) -> bool:
        """Whether a process's /readyz answers 200 now (False when it does not answer)."""
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(self.stack.url(process) + "/readyz") as response,
            ):
                return response.status == 200
        except aiohttp.ClientError:
            return False

    async def metric(self, service: str, name: str, **labels: str) -> float:
        """The current value of one sample on a service's /metrics (0 when absent)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{wanted}}}" if labels else name
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.stack.url(service) + "/metrics") as response,
        ):
            text = await response.text()
        for line in text.splitlines():
            sample, _, value = line.rpartition(" ")
            if _labels_match(sample, name, labels) or sample == prefix:
                return float(value)
        return 0.0


def _labels_match(sample: str, name: str, labels: dict[str, str]) -> bool:
    if not sample.startswith(name + "{"):
        return False
    return all(f'{k}="{v}"' in sample for k, v in labels.items())


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20, every: float = 0.1
) -> None:
    """Wait until `check()` is true; fail with a TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(every)


async def settled(check: Callable[[], Awaitable[bool]], *, timeout: float = 10) -> None:
    """Wait until `check()` is true, or for `timeout` seconds at most: for what a process
    writes a moment later (usage counts), where the caller's asserts then say what differs."""
    with contextlib.suppress(TimeoutError):
        await eventually(check, timeout=timeout)


NextEvent = Callable[[], Awaitable[dict[str, Any]]]


@contextlib.asynccontextmanager
async def hearing(url: str, namespace: str, kind: str) -> AsyncIterator[NextEvent]:
    """While open, a private queue hears the namespace's events of `kind`; yields a function
    that returns the next one's body (TimeoutError after 10 s without one)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(Broker(url, namespace).exchange_name, routing_key=kind)

        async def next_event() -> dict[str, Any]:
            deadline = time.monotonic() + 10
            while (message := await queue.get(no_ack=True, fail=False)) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {kind} event in 10 s")
                await asyncio.sleep(0.05)
            body: dict[str, Any] = json.loads(message.body)
            return body

        yield next_event
