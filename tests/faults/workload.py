"""The fault run's load: tenants with their own webhook receivers, sandbox instances, messages.

Every instance gets shrunk lane gaps; some get small caps, the others keep the
default ones. Messages go out through the API at a steady pace while faults
happen, and a send the gateway did not answer (down, 503, no answer) is tried
again, as a client would. Every fourth carries an `externalId`, so its repeat is
answered with the first message and the send is one message whatever happened;
a repeat without one may add a second (the first's answer was lost). Only every
fourth: the embedded store checks a unique compound key by reading the whole
collection whenever a keyed message changes.
"""

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from lanegate.lanes import LanePolicy, policies_for
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver

LANE_NAMES = ("urgent", "normal", "bulk")
GAPS = {"urgent": [30, 80], "normal": [60, 150], "bulk": [90, 200]}
CAPS = {"normal": {"perHour": 4}, "bulk": {"perDay": 3}}
KEYED_EVERY = 4


@dataclass
class Instance:
    name: str
    tenant: str
    key: str
    lanes: dict[str, dict[str, Any]]

    def policy(self, lane: str) -> LanePolicy:
        """The lane's pacing as the gateway applies it: these settings over the defaults."""
        return policies_for({"lanes": self.lanes})[lane]

    def min_gap(self, lane: str) -> float:
        return self.policy(lane).min_delay

    def cap(self, lane: str) -> int | None:
        policy = self.policy(lane)
        found = [c for c in (policy.per_hour, policy.per_day) if c]
        return min(found) if found else None


@dataclass
class TenantRun:
    id: str
    key: str
    receiver: Receiver


@dataclass
class Workload:
    """Who sends what, and what the gateway accepted."""

    gateway: Gateway
    rng: random.Random
    tenants: list[TenantRun] = field(default_factory=list)
    instances: dict[str, Instance] = field(default_factory=dict)
    accepted: dict[str, str] = field(default_factory=dict)  # message id -> instance
    refused: int = 0  # answers that were not a 202 (down, 503), each tried again
    given_up: int = 0

    async def setup(self, *, tenants: int, instances: int, capped: int) -> None:
        """Tenants with a receiver each; `instances` open sandbox instances, `capped` capped."""
        for _ in range(tenants):
            tenant_id, key = await self.gateway.tenant()
            self.tenants.append(TenantRun(tenant_id, key, Receiver().start()))
        for n in range(instances):
            tenant = self.tenants[n % tenants]
            lanes: dict[str, dict[str, Any]] = {lane: {"delayMs": GAPS[lane]} for lane in GAPS}
            if n < capped:
                for lane, caps in CAPS.items():
                    lanes[lane] = lanes[lane] | caps
            name = await self.gateway.instance(
                tenant.id, tenant.key, tenant.receiver.url(), lanes=lanes, connect=False
            )
            self.instances[name] = Instance(name, tenant.id, tenant.key, lanes)
        for instance in self.instances.values():
            status, body = await self.gateway.call(
                "POST", f"/sandbox/{instance.name}/scan", key=instance.key
            )
            assert 202 == status, body
        for instance in self.instances.values():
            await eventually(lambda i=instance: self._open(i), timeout=60)  # type: ignore[misc]

    async def _open(self, instance: Instance) -> bool:
        _, body = await self.gateway.call(
            "GET", f"/instance/{instance.name}/status", key=instance.key
        )
        return bool(body and body.get("state") == "open")

    def capped(self) -> list[Instance]:
        return [i for i in self.instances.values() if any(i.cap(lane) for lane in LANE_NAMES)]

    async def send(self, count: int, seconds: float, *, concurrency: int = 4) -> None:
        """Send `count` messages spread over about `seconds`, `concurrency` at a time."""
        run = len(self.accepted) + self.given_up  # several sends in one test never share keys
        names = list(self.instances)
        jobs: asyncio.Queue[int] = asyncio.Queue()
        plan: list[dict[str, Any]] = []
        for n in range(count):
            jobs.put_nowait(n)
            instance = self.instances[self.rng.choice(names)]
            plan.append(
                {
                    "instanceName": instance.name,
                    "to": f"54911{self.rng.randrange(10**7, 10**8)}",
                    "text": f"{{Hello|Hi}} from the fault run, message {n}",
                    "lane": self.rng.choices(LANE_NAMES, weights=(3, 4, 3))[0],
                    "priority": self.rng.randint(1, 10),
                    **({"externalId": f"fault-{run}-{n}"} if n % KEYED_EVERY == 0 else {}),
                }
            )
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:

            async def worker() -> None:
                while not jobs.empty():
                    n = jobs.get_nowait()
                    due = started + seconds * n / max(count, 1)
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    await self._send_one(http, plan[n])

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def _send_one(self, http: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        instance = self.instances[body["instanceName"]]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                async with http.post(
                    self.gateway.api + "/message/text", json=body, headers={"apikey": instance.key}
                ) as response:
                    if response.status in (200, 202):  # 200: a repeat found the first one
                        self.accepted[(await response.json())["id"]] = instance.name
                        return
                    assert response.status >= 500, await response.text()
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.refused += 1
            await asyncio.sleep(0.5)
        self.given_up += 1

    def stop(self) -> None:
        for tenant in self.tenants:
            tenant.receiver.stop()
