"""Ingress accept path: single sends beside a bare aiohttp handler, and a 1,000-message bulk.

In one run on this machine, each phase on a fresh store and ingress-api
process (devtools.stack), because the wire store's insert cost grows with the
collection: (1) store round trips counted by a proxy in front of the store
(`bench/_wire_counter.py`: what the process really sends, seen from outside)
for single sends and one bulk request; (2) the time to accept a bulk request;
(3) requests/s of `POST /message/text` beside a bare handler on uvloop in its
own process (validates the body with `TextMessage`, publishes one confirmed
message to the same exchange), the same handler with one store insert, and
with the gateway's store round trips. A load generator in its own process
drives each in turn (closed loop, `--rounds` rounds), then the gateway and the
bare handler open loop at half the gateway's peak rate for latency; (4) the
same again with every process's inserts answered by the proxy and not stored
(`free_inserts`): the embedded store spends milliseconds of CPU on each insert,
which holds any handler that stores a message far below the bare one, so this
shows what the gateway itself costs beside a store that keeps up (as MongoDB on
its own machine would). Every measurement starts on emptied queues: nothing
consumes them here, as a running lane-scheduler would. The store is the one
`LANEGATE_TEST_STORE` names, as for the suite (mongoeco by default).

    python -m bench.ingress [--seconds 8] [--concurrency 32] [--rounds 3] [--paced 5]
"""

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import uvloop
from aio_pika.abc import AbstractChannel

from bench._wire_counter import MONITORING, WireCounter
from devtools.stack import Stack, StoreEngine, delete_topology, free_port, wait_http
from lanegate.broker import Broker
from lanegate.secrets import new_key

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TO = "5491112345678"


async def drive(namespace: str, url: str, body: Any, key: str | None, *mode: str) -> dict[str, Any]:
    """Run the load generator in its own process, on emptied queues, and return its summary."""
    await purge(namespace)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._load",
        url,
        json.dumps(body),
        *(["--key", key] if key else []),
        *mode,
        stdout=subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    if process.returncode:
        raise RuntimeError(f"load generator failed ({process.returncode})")
    summary: dict[str, Any] = json.loads(out)
    return summary


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgresql_cpu_seconds() -> float:
    """CPU used so far by the PostgreSQL processes of this machine (the cluster FerretDB
    keeps its data in: nothing else should use it during a benchmark)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return total


def store_cpu_seconds(stack: Stack) -> float:
    """CPU the stack's store has used so far: its process, and PostgreSQL's under FerretDB."""
    own = cpu_seconds(stack.processes["store"].pid)
    return own + (postgresql_cpu_seconds() if stack.store.engine == "ferretdb" else 0.0)


async def call(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def tenant(http: aiohttp.ClientSession, api: str, admin_key: str) -> tuple[str, str]:
    """A tenant with a sandbox instance (never connected: accepting does not need it)."""
    tenant_id = f"bench{uuid.uuid4().hex[:8]}"
    status, body = await call(
        http, f"{api}/admin/tenants", {"id": tenant_id, "name": tenant_id}, {"apikey": admin_key}
    )
    assert status == 201, body
    key, name = body["apiKey"], f"{tenant_id}__bench__main"
    instance = {
        "instanceName": name,
        "webhookUrl": "http://127.0.0.1:9/hook",
        "webhookSecret": "bench-secret-bench-secret",
    }
    status, body = await call(http, f"{api}/instance/create", instance, {"apikey": key})
    assert status == 201, body
    return key, name


def bulk_body(name: str, count: int) -> dict[str, Any]:
    return {
        "messages": [
            {"instanceName": name, "to": f"549110{n:07d}", "text": f"Hello {{there|friend}} {n}"}
            for n in range(count)
        ]
    }


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


class Run:
    """The processes of one benchmark run, stopped whatever happens."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.namespace = f"lgbench-{uuid.uuid4().hex[:8]}"
        self.admin_key = secrets.token_urlsafe(32)
        self.logs = Path("var/bench-logs") / self.namespace
        self.stack = self.new_stack()
        self.helpers: list[subprocess.Popen[bytes]] = []

    def new_stack(self) -> Stack:
        """A store and one ingress-api process (started by `start`)."""
        return Stack.create(
            self.logs / f"stack-{uuid.uuid4().hex[:4]}",
            settings={
                "LANEGATE_AMQP_URL": AMQP_URL,
                "LANEGATE_NAMESPACE": self.namespace,
                "LANEGATE_MONGO_DB": "lanegate_bench",
                "LANEGATE_ADMIN_KEY": self.admin_key,
                "LANEGATE_SECRET_KEY": new_key(),
                "LANEGATE_ALLOW_PRIVATE_TARGETS": "true",
                # Counting still runs per request; only the 600/min default would refuse the load.
                "LANEGATE_RATE_LIMIT_PER_MINUTE": str(10**9),
            },
            store=StoreEngine.from_environment(os.environ),
        )

    def start(self) -> None:
        self.stack.start_store()
        self.stack.start("ingress_api")

    def fresh_stack(self) -> None:
        """Replace the stack with a new one: the wire store's insert cost grows with the
        collection, so each phase starts from an empty store."""
        self.stack.stop_all()
        self.stack = self.new_stack()
        self.start()

    def helper(self, args: list[str], env: dict[str, str], port: int) -> tuple[str, int]:
        """Start a helper process listening on `port`; returns its base URL once ready, and
        its pid."""
        process = spawn(args, env, self.logs / f"helper-{port}.log")
        self.helpers.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/readyz", 60)
        return url, process.pid

    def bare(self, store: str, mongo: str) -> tuple[str, int]:
        """A bare handler with the given store work (`none`, `insert` or `same`)."""
        port = free_port()
        args = ["-m", "bench._bare_ingress", "--port", str(port), "--amqp", AMQP_URL]
        args += ["--exchange", f"{self.namespace}.events", "--store", store]
        args += ["--mongo", mongo, "--db", "lanegate_bench"]
        return self.helper(args, dict(os.environ), port)

    def ingress(self, mongo: str, label: str) -> tuple[str, int]:
        """Another ingress-api process on this run's broker and the store at `mongo`."""
        port = free_port()
        env = dict(self.stack.env)
        env["LANEGATE_MONGO_URI"] = mongo
        env["LANEGATE_INGRESS_PORT"] = str(port)
        return self.helper(["-m", "ingress_api"], env, port)

    def close(self) -> None:
        try:
            for process in self.helpers:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.stack.stop_all()
        finally:
            asyncio.run(delete_topology(AMQP_URL, self.namespace))


@contextlib.asynccontextmanager
async def topology(namespace: str) -> AsyncIterator[tuple[AbstractChannel, Broker]]:
    """A channel on the broker, and the run's topology names."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        yield await connection.channel(), Broker(AMQP_URL, namespace)


async def purge(namespace: str) -> None:
    """Empty the run's queues before a measurement. Nothing consumes them here, as a running
    lane-scheduler would: otherwise `message.accepted`'s quorum queue grows past 200,000
    messages over a run, which no running gateway lets happen."""
    async with topology(namespace) as (channel, broker):
        for name in broker.queue_names():
            queue = await channel.get_queue(name)
            await queue.purge()


async def single(run: Run, key: str, name: str, proxy: str | None = None) -> dict[str, Any]:
    """Closed-loop peak of the gateway and the bare handlers, then the gateway paced; with
    `proxy` (the free-insert proxy's address), the gateway and the handlers use the store
    through it."""
    args, body = run.args, {"instanceName": name, "to": TO, "text": "Hello {there|friend}"}
    mongo = proxy or run.stack.env["LANEGATE_MONGO_URI"]
    if proxy is None:
        gateway = (run.stack.url("ingress_api"), run.stack.processes["ingress_api"].pid)
    else:
        gateway = await asyncio.to_thread(run.ingress, proxy, "free-inserts")
    targets = {
        "gateway": (*gateway, key),
        "bare": (*await asyncio.to_thread(run.bare, "none", mongo), None),
        "bare_insert": (*await asyncio.to_thread(run.bare, "insert", mongo), None),
        "bare_same": (*await asyncio.to_thread(run.bare, "same", mongo), key),
    }
    closed = ["closed", "--concurrency", str(args.concurrency), "--seconds", str(args.seconds)]
    peaks: dict[str, list[dict[str, Any]]] = {target: [] for target in targets}
    for _ in range(args.rounds):
        for target, (url, pid, api_key) in targets.items():
            before = cpu_seconds(pid), store_cpu_seconds(run.stack)
            peak = await drive(run.namespace, url + "/message/text", body, api_key, *closed)
            # CPU per request of the server and of the store: what the machine's load can't skew.
            peak["cpu"] = (cpu_seconds(pid) - before[0]) / peak["sent"]
            peak["store_cpu"] = (store_cpu_seconds(run.stack) - before[1]) / peak["sent"]
            peaks[target].append(peak)
    best = {t: max(runs, key=lambda r: float(r["rate"])) for t, runs in peaks.items()}
    half = round(best["gateway"]["rate"] / 2, 1)
    paced = ["open", "--rate", str(half), "--seconds", str(args.seconds)]
    paced_bare, paced_gateway = [], []
    for _ in range(args.paced):
        bare_url = targets["bare"][0] + "/message/text"
        paced_bare.append(await drive(run.namespace, bare_url, body, None, *paced))
        gateway_url = gateway[0] + "/message/text"
        if proxy is None:
            # The rounds before filled the store; pace a fresh one, as the peak was measured.
            await asyncio.to_thread(run.fresh_stack)
            async with aiohttp.ClientSession() as http:
                key, name = await tenant(http, run.stack.url("ingress_api"), run.admin_key)
            body["instanceName"] = name
            gateway_url = run.stack.url("ingress_api") + "/message/text"
        paced_gateway.append(await drive(run.namespace, gateway_url, body, key, *paced))
    return {
        "peaks": peaks,
        "best": best,
        "half": half,
        "paced": paced_gateway,
        "paced_bare": paced_bare,
    }


async def timed_bulk(api: str, key: str, name: str, count: int, trials: int) -> list[float]:
    """Seconds to accept a `count`-message bulk request, `trials` times."""
    seconds = []
    async with aiohttp.ClientSession() as http:
        for _ in range(trials):
            started = time.perf_counter()
            status, answer = await call(
                http, f"{api}/message/bulk", bulk_body(name, count), {"apikey": key}
            )
            seconds.append(time.perf_counter() - started)
            assert status == 202 and answer["accepted"] == count, (status, answer)
    return seconds


async def counted(run: Run, key: str, name: str, sends: int, bulk: int) -> dict[str, Any]:
    """Store round trips of a second ingress-api process behind the counting proxy."""
    counter = WireCounter(run.stack.store_port)
    proxy = await counter.start()
    try:
        uri = f"mongodb://127.0.0.1:{proxy}/?directConnection=true"
        api, _ = await asyncio.to_thread(run.ingress, uri, "counted")
        body = {"instanceName": name, "to": TO, "text": "Hello {there|friend}"}
        async with aiohttp.ClientSession() as http:
            for _ in range(20):  # warm up, and past the once-a-minute lastUsedAt write
                await call(http, f"{api}/message/text", body, {"apikey": key})
            counter.reset()
            started = time.perf_counter()
            for _ in range(sends):
                status, answer = await call(http, f"{api}/message/text", body, {"apikey": key})
                assert status == 202, answer
            latency = (time.perf_counter() - started) / sends
        single = {
            "round_trips": counter.round_trips() / sends,
            "commands": {k: v / sends for k, v in counter.commands.items()},
            "store_seconds": sum(counter.seconds.values()) / sends,
            "latency": latency,
        }
        counter.reset()
        [seconds] = await timed_bulk(api, key, name, bulk, 1)
        bulk_commands, bulk_store = dict(counter.commands), dict(counter.seconds)
        return {
            "single": single,
            "bulk": {
                "round_trips": sum(n for k, n in bulk_commands.items() if k not in MONITORING),
                "commands": bulk_commands,
                "seconds": seconds,
                "store_seconds": bulk_store,
            },
        }
    finally:
        await counter.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report_single(title: str, one: dict[str, Any]) -> None:
    best = one["best"]
    gateway, bare, with_insert, same = (
        float(best[t]["rate"]) for t in ("gateway", "bare", "bare_insert", "bare_same")
    )
    print(f"  {title}")
    for target, runs in one["peaks"].items():
        rates = ", ".join(f"{r['rate']:.0f}" for r in runs)
        print(f"    {target:12} requests/s per round: {rates}  statuses {runs[-1]['statuses']}")
    ratios = [
        f"{g['rate'] / b['rate']:.2f}"
        for g, b in zip(one["peaks"]["gateway"], one["peaks"]["bare_same"], strict=True)
    ]
    print(f"    gateway / (bare + the same store round trips) per round: {', '.join(ratios)}")
    for target, runs in one["peaks"].items():
        cpu = ", ".join(f"{ms(r['cpu'])} + store {ms(r['store_cpu'])}" for r in runs)
        print(f"    {target:12} CPU per request per round: {cpu}")
    print(
        f"    gateway POST /message/text:       {gateway:5.0f} requests/s"
        f" = {gateway / bare:.2f} of bare"
    )
    print(f"    bare handler (validate, publish): {bare:5.0f} requests/s")
    print(
        f"    bare handler + 1 store insert:    {with_insert:5.0f} requests/s"
        f" (gateway = {gateway / with_insert:.2f} of it)"
    )
    print(
        f"    bare handler + the gateway's store round trips: {same:5.0f} requests/s"
        f" (gateway = {gateway / same:.2f} of it)"
    )
    print(f"    paced at {one['half']} requests/s (half the gateway's peak), per trial:")
    for name, trials in (("gateway", one["paced"]), ("bare", one["paced_bare"])):
        p50s, p99s = (", ".join(f"{t[p]:.1f}" for t in trials) for p in ("p50", "p99"))
        median = statistics.median(t["p99"] for t in trials)
        maxes = ", ".join(f"{t['max']:.1f}" for t in trials)
        print(
            f"      {name:8} p50 {p50s} ms; p99 {p99s} ms (median {median:.1f}); max {maxes} ms"
            f" {trials[-1]['statuses']}"
        )


def report(
    load: tuple[float, ...],
    one: dict[str, Any],
    free: dict[str, Any],
    bulk: list[float],
    c: dict[str, Any],
    count: int,
) -> None:
    print(f"ingress: load average before the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    engine = StoreEngine.from_environment(os.environ).engine
    report_single(f"single sends, on the store ({engine}):", one)
    report_single("single sends, inserts answered by the free-insert proxy:", free)
    s = c["single"]
    commands = ", ".join(f"{k} {v:.2f}" for k, v in sorted(s["commands"].items()))
    print(
        f"  one send through the counting proxy: {s['round_trips']:.2f} store round trips"
        f" ({commands}); {ms(s['store_seconds'])} waiting on the store of {ms(s['latency'])}"
        f" per request, one at a time ({s['store_seconds'] / s['latency']:.0%})"
    )
    b = c["bulk"]
    commands = ", ".join(f"{k} {v}" for k, v in sorted(b["commands"].items()))
    print(
        f"  bulk of {count}: accepted in {', '.join(ms(x) for x in bulk)}"
        f" (median {ms(statistics.median(bulk))}); through the proxy {ms(b['seconds'])} with"
        f" {b['round_trips']} store round trips = {b['round_trips'] / count:.3f} per message"
        f" ({commands}); waiting on the store: "
        + ", ".join(f"{k} {ms(v)}" for k, v in sorted(b["store_seconds"].items()))
    )


async def free_inserts(run: Run, key: str, name: str) -> dict[str, Any]:
    """Single sends again, every process's inserts answered by the proxy (not stored)."""
    proxy = WireCounter(run.stack.store_port, free_inserts=True)
    port = await proxy.start()
    try:
        return await single(run, key, name, f"mongodb://127.0.0.1:{port}/?directConnection=true")
    finally:
        await proxy.close()


async def measure(run: Run) -> None:
    """Each phase on a fresh store and ingress-api process: counted, bulk, single sends (on
    the store, then with free inserts)."""
    args, load = run.args, os.getloadavg()
    results: list[Any] = []
    for phase in ("counted", "bulk", "single", "free"):
        if phase != "counted":
            await asyncio.to_thread(run.fresh_stack)
        api = run.stack.url("ingress_api")
        async with aiohttp.ClientSession() as http:
            key, name = await tenant(http, api, run.admin_key)
        if phase == "counted":
            results.append(await counted(run, key, name, args.counted, args.bulk))
        elif phase == "bulk":
            results.append(await timed_bulk(api, key, name, args.bulk, args.trials))
        elif phase == "single":
            results.append(await single(run, key, name))
        else:
            results.append(await free_inserts(run, key, name))
    counts, bulk, one, free = results
    report(load, one, free, bulk, counts, args.bulk)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingress")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--counted", type=int, default=200)
    parser.add_argument("--paced", type=int, default=5, help="paced trials per store")
    args, _ = parser.parse_known_args()
    run = Run(args)
    try:
        run.start()
        # uvloop, like the processes it measures: the proxy answering inserts runs here, and
        # on plain asyncio its own delays doubled the p99 of a handler that stores.
        uvloop.run(measure(run))
    finally:
        run.close()


if __name__ == "__main__":
    main()
