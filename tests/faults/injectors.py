"""The faults: each one breaks something real for a while, then lets it come back.

Blocking process control (start waits for /readyz) runs in a thread so the
load keeps flowing meanwhile. Every fault is logged with how long it lasted.
"""

import asyncio
import random
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from devtools.stack import Stack, wait_http
from lane_scheduler.ownership import shard_of
from tests.faults.rabbit import RabbitNode
from tests.faults.workload import Workload
from tests.support.gateway import Gateway, eventually

REPLICA = "lane_scheduler_2"
READY_SECONDS = 60  # a restarted service not answering /readyz by then is a finding
LOG_LINES = 15
SERVICES = (
    "ingress_api",
    "lane_scheduler",
    "provider_sender",
    "webhook_dispatcher",
    "template_sync",
)


def group(name: str) -> str:
    """Faults of one group touch the same thing, so they never run at the same time."""
    if name in ("kill:lane_scheduler", "kill:scheduler_owner"):
        return "scheduler"
    return name.split(":")[0] if name.startswith(("rabbit:", "sandbox:")) else name


def mixed_steps(names: list[str], rng: random.Random, *, count: int) -> list[list[str]]:
    """`count` faults drawn at random, run one or two at a time (never two of one group)."""
    steps: list[list[str]] = []
    drawn = [rng.choice(names) for _ in range(count)]
    while drawn:
        first = drawn.pop()
        if drawn and rng.random() < 0.5 and group(drawn[-1]) != group(first):
            steps.append([first, drawn.pop()])
        else:
            steps.append([first])
    return steps


def log_tail(stack: Stack, process: str, lines: int = LOG_LINES) -> str:
    """The last lines of a process's log."""
    path = stack.log_dir / f"{process}.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def unready(stack: Stack, processes: list[str], timeout: float = READY_SECONDS) -> list[str]:
    """A finding for each of `processes` whose /readyz does not answer 200 within `timeout`
    (it keeps running: the run goes on and its verdict shows what the absence did)."""
    findings = []
    for process in processes:
        try:
            await asyncio.to_thread(wait_http, stack.url(process) + "/readyz", timeout)
        except TimeoutError:
            findings.append(
                f"{process} not ready {timeout:.0f} s after its start; its log ends:\n"
                + log_tail(stack, process)
            )
    return findings


@dataclass
class Injected:
    fault: str
    detail: str
    seconds: float


@dataclass
class Injector:
    """Runs named faults against one stack, its RabbitMQ node and the workload's receivers."""

    gateway: Gateway
    rabbit: RabbitNode
    workload: Workload
    rng: random.Random
    log: list[Injected] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    scale: float = 1.0  # stretches every pause and outage (the long run is longer)
    receiver_down: tuple[float, float] = (5, 15)  # seconds a receiver is away, before scale

    def names(self) -> list[str]:
        """Every fault this injector knows, in a stable order."""
        return [
            *(f"kill:{service}" for service in SERVICES),
            "kill:scheduler_owner",
            "rabbit:stop_app",
            "rabbit:drop_connections",
            "store:restart",
            "sandbox:error",
            "sandbox:timeout",
            "sandbox:ban",
            "receiver:down_slow_back",
        ]

    async def run(self, name: str) -> None:
        kind, _, what = name.partition(":")
        started = time.monotonic()
        actions: dict[str, Callable[[str], Awaitable[str]]] = {
            "kill": self._kill,
            "rabbit": self._rabbit,
            "store": self._store,
            "sandbox": self._sandbox,
            "receiver": self._receiver,
        }
        detail = await actions[kind](what)
        self.log.append(Injected(name, detail, time.monotonic() - started))
        print(f"fault {name}: {detail} ({time.monotonic() - started:.1f} s)", flush=True)

    def _pause(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * self.scale

    # --- processes ---

    async def _kill(self, service: str) -> str:
        stack = self.gateway.stack
        if service == "scheduler_owner":
            return await self._kill_owner()
        pause = self._pause(0.5, 3)
        await asyncio.to_thread(stack.kill, service)
        await asyncio.sleep(pause)
        await self._restart(service)
        return f"SIGKILL, restarted after {pause:.1f} s"

    async def _restart(self, process: str) -> None:
        """Start a killed process again; one that does not get ready is a finding."""
        stack = self.gateway.stack
        if process == REPLICA:
            await asyncio.to_thread(stack.start_replica, REPLICA, "lane_scheduler", wait=False)
        else:
            await asyncio.to_thread(stack.start, process, wait=False)
        self.findings += await unready(stack, [process])

    async def ensure_replica(self) -> None:
        """A second lane-scheduler replica, running until the stack stops."""
        stack = self.gateway.stack
        if REPLICA not in stack.processes:
            await self._restart(REPLICA)
        await eventually(lambda: self._owners_count(2), timeout=60)

    async def _owners_count(self, count: int) -> bool:
        return count == len(set((await self._owners()).values()))

    async def _owners(self) -> dict[int, str]:
        async with self.gateway.mongo() as client:
            return {
                doc["_id"]: doc["owner"]
                async for doc in client.lanegate_test.scheduler_shards.find(
                    {"owner": {"$ne": None}}
                )
            }

    async def _kill_owner(self) -> str:
        """Kill the replica that schedules the most of the workload's instances, mid-dispatch."""
        await self.ensure_replica()
        stack = self.gateway.stack
        owners = await self._owners()
        counts = Counter(owners.get(shard_of(name)) for name in self.workload.instances)
        replicas = {
            f"{socket.gethostname()}:{stack.ports[process]}": process
            for process in ("lane_scheduler", REPLICA)
        }
        owner, owned = next(((o, c) for o, c in counts.most_common() if o in replicas), ("", 0))
        process = replicas.get(owner, REPLICA)
        pause = self._pause(0.5, 4)
        await asyncio.to_thread(stack.kill, process)
        await asyncio.sleep(pause)
        await self._restart(process)
        return f"{process} owning {owned} instances killed, restarted after {pause:.1f} s"

    async def _store(self, _: str) -> str:
        stack = self.gateway.stack
        pause = self._pause(1, 4)
        how = self.rng.choice(["SIGTERM", "SIGKILL"])
        if how == "SIGKILL":
            await asyncio.to_thread(stack.kill, "store")
        else:
            await asyncio.to_thread(stack.stop, "store")
        await asyncio.sleep(pause)
        await asyncio.to_thread(stack.start_store)
        return f"{how}, restarted on the same data after {pause:.1f} s"

    # --- broker ---

    async def _rabbit(self, what: str) -> str:
        if what == "drop_connections":
            await asyncio.to_thread(self.rabbit.close_all_connections)
            return "every client connection closed by the broker"
        pause = self._pause(1, 5)
        await asyncio.to_thread(self.rabbit.stop_app)
        await asyncio.sleep(pause)
        await asyncio.to_thread(self.rabbit.start_app)
        return f"stop_app, start_app after {pause:.1f} s"

    # --- the provider and the tenants' endpoints ---

    def _some_instances(self) -> list[str]:
        names = sorted(self.workload.instances)
        return self.rng.sample(names, k=max(2, len(names) // 3))

    async def _sandbox(self, kind: str) -> str:
        targets = self._some_instances()
        seconds = self._pause(2, 5)
        for name in targets:
            key = self.workload.instances[name].key
            body: dict[str, object] = {"seconds": seconds}
            if kind == "ban":
                path = f"/sandbox/{name}/ban"
            else:
                path, body["kind"] = f"/sandbox/{name}/fault", kind
            await self._call(path, key, body)
        await asyncio.sleep(seconds)
        return f"{len(targets)} instances for {seconds:.1f} s"

    async def _call(self, path: str, key: str, body: dict[str, object]) -> None:
        """POST as a client would: a 503 (broker reconnecting) or no answer at all (ingress-api
        killed by a fault running alongside) is tried again; the call sets a state, so a repeat
        is harmless."""
        for _ in range(60):
            try:
                status, answer = await self.gateway.call("POST", path, key=key, json=body)
            except aiohttp.ClientError:
                status, answer = 503, None
            if status != 503:
                assert 202 == status, answer
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"{path} answered 503 or nothing for 30 s")

    async def _receiver(self, _: str) -> str:
        tenant = self.rng.choice(self.workload.tenants)
        down, slow = self._pause(*self.receiver_down), self._pause(3, 6)
        receiver = tenant.receiver
        receiver.stop()
        await asyncio.sleep(down)
        # Slow: some answers come after the dispatcher's 2 s timeout, so those are retried.
        slowness = random.Random(self.rng.random())  # the receiver's own thread draws from it
        receiver.delay = lambda _: slowness.choice([0.5, 1.0, 3.0])
        receiver.start()
        await asyncio.sleep(slow)
        receiver.delay = lambda _: 0.0
        return f"{tenant.id}'s receiver down {down:.1f} s, then slow {slow:.1f} s, then back"
