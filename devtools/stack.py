"""The whole gateway on one machine: a store and the five services as processes.

Used by `make run` and by the tests that start, kill and restart real processes; the store is
mongoeco (memory or `--sqlite PATH`), FerretDB (`make ferretdb`) or a MongoDB at a URI.
"""

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import aio_pika

from lanegate.broker import Broker
from lanegate.healthcheck import SERVICE_PORT_FIELDS
from lanegate.settings import Settings

# Each service's package and the settings field holding its HTTP port (which also names the
# port's variable and default, so the ports themselves are listed only in settings.py).
SERVICES = SERVICE_PORT_FIELDS
# `python -m devtools.stack` finds this package from the repository's root.
REPO = Path(__file__).resolve().parents[1]
FERRETDB = REPO / ".tools" / "ferretdb"
# The cluster `make postgres` starts and the role it makes for FerretDB's databases.
POSTGRES_URL = "postgres://lanegate:lanegate@127.0.0.1:54315/postgres"

# FerretDB's PostgreSQL connections, and each client's store connections on FerretDB (a
# stack runs up to about eight processes; see StoreEngine.local_uri). FerretDB v1 also holds
# a connection for each statement of a bulk update until the whole command is done, so the
# pool must hold the largest the gateway sends (lanegate.store.MOST_PER_WRITE) several times
# over, or such a bulk waits for good (and every client with it).
FERRETDB_POOL = 600
CLIENT_POOL = 10

Engine = Literal["mongoeco", "ferretdb", "ferretdb-sqlite", "uri"]
ENGINES: tuple[Engine, ...] = ("mongoeco", "ferretdb", "ferretdb-sqlite", "uri")


@dataclass(frozen=True)
class StoreEngine:
    """Which wire store a stack runs: mongoeco, FerretDB on PostgreSQL (a database of the
    stack's own on `postgres_url`) or on SQLite, or the MongoDB server at `uri`."""

    engine: Engine = "mongoeco"
    uri: str = ""
    postgres_url: str = POSTGRES_URL

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str], default: Engine = "mongoeco"
    ) -> "StoreEngine":
        """The engine `LANEGATE_TEST_STORE` names (`uri` when only `LANEGATE_TEST_STORE_URI`
        is set), with `LANEGATE_TEST_POSTGRES_URL` for FerretDB's PostgreSQL."""
        uri = env.get("LANEGATE_TEST_STORE_URI", "")
        chosen = env.get("LANEGATE_TEST_STORE") or ("uri" if uri else default)
        if chosen not in ENGINES:
            raise ValueError(
                f"LANEGATE_TEST_STORE={chosen!r}: expected one of {', '.join(ENGINES)}"
            )
        if chosen == "uri" and not uri:
            raise ValueError("LANEGATE_TEST_STORE=uri needs LANEGATE_TEST_STORE_URI")
        postgres_url = env.get("LANEGATE_TEST_POSTGRES_URL") or POSTGRES_URL
        return cls(engine=chosen, uri=uri, postgres_url=postgres_url)

    @property
    def runs_here(self) -> bool:
        """Whether the stack starts (and may stop) the store itself."""
        return self.engine != "uri"

    def local_uri(self, port: int) -> str:
        """The client URI of this engine's store started here on `port`.

        FerretDB v1 holds a connection of its PostgreSQL pool for every operation in flight
        and may need a second one inside it, so clients together must stay below its pool
        (FERRETDB_POOL) or every operation waits for good: each client keeps few connections.
        """
        limit = f"&maxPoolSize={CLIENT_POOL}" if self.engine.startswith("ferretdb") else ""
        return f"mongodb://127.0.0.1:{port}/?directConnection=true{limit}"


def postgres_database(url: str, name: str, *, create: bool) -> None:
    """Create (or drop) the PostgreSQL database `name` on the server at `url`."""
    statement = f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}"'
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", statement],
        check=True,
        capture_output=True,
    )


def port_variable(service: str) -> str:
    """The environment variable that sets `service`'s HTTP port."""
    return f"{Settings.model_config.get('env_prefix', '')}{SERVICES[service]}".upper()


def configured_ports(settings: Mapping[str, str]) -> dict[str, int]:
    """Each service's port as `settings` (LANEGATE_* variables) give it, else its default."""
    return {
        service: int(
            settings.get(port_variable(service), Settings.model_fields[port_field].default)
        )
        for service, port_field in SERVICES.items()
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_store(host: str, port: int, sqlite: str | None = None) -> None:
    """Run mongoeco's wire server until SIGTERM or SIGINT (on SQLite at `sqlite` if given),
    on plain asyncio: its shutdown is not safe under uvloop."""
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    class Engine(SQLiteEngine):
        """Before a query whose cached facts a write dropped, the SQLite engine scans the
        whole collection for Decimal128 values, so each write makes the next query cost the
        collection's size (half the store's time in the long fault run). lanegate stores no
        decimals: only a decimal in the query itself needs the slow path."""

        def _plan_requires_python_for_decimal_numeric(
            self, db_name: str, coll_name: str, plan: object
        ) -> bool:
            return self._plan_contains_decimal_operand(plan)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        engine = Engine(sqlite) if sqlite else None
        async with AsyncMongoEcoProxyServer(host=host, port=port, engine=engine) as server:
            print(f"store listening on {server.address.uri}", flush=True)
            await stop.wait()

    asyncio.run(serve())


def wait_http(url: str, timeout: float) -> None:
    """Poll `url` until it answers 200; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not become ready in {timeout:.0f} s")
        time.sleep(0.2)


def wait_port(port: int, timeout: float) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} did not open in {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class Stack:
    """The store and the five services as child processes sharing one environment."""

    env: dict[str, str]
    log_dir: Path
    store_port: int
    ports: dict[str, int] = field(default_factory=dict)
    store_sqlite: Path | None = None
    store: StoreEngine = field(default_factory=StoreEngine)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # FerretDB's PostgreSQL database, made at the store's first start and dropped by stop_all.
    store_database: str | None = None

    @classmethod
    def create(
        cls,
        log_dir: Path,
        *,
        settings: Mapping[str, str],
        ports: Mapping[str, int] | None = None,
        store_sqlite: Path | None = None,
        store: StoreEngine | None = None,
    ) -> "Stack":
        """A stack whose services get `settings` (LANEGATE_* variables) and the given ports,
        on the `store` engine (mongoeco by default).

        With `store_sqlite` mongoeco keeps its data in that SQLite file across restarts
        (FerretDB always keeps it: in its PostgreSQL database or its SQLite directory).
        """
        engine = store or StoreEngine()
        if engine.runs_here:
            store_port = int(settings.get("store_port", 0)) or free_port()
        else:
            store_port = urlsplit(engine.uri).port or 27017
        chosen = {name: (ports or {}).get(name) or free_port() for name in SERVICES}
        env = {k: v for k, v in os.environ.items() if not k.startswith("LANEGATE_")}
        env |= {k: v for k, v in settings.items() if k.startswith("LANEGATE_")}
        env["LANEGATE_MONGO_URI"] = engine.local_uri(store_port) if engine.runs_here else engine.uri
        env |= {port_variable(name): str(port) for name, port in chosen.items()}
        env["LANEGATE_HTTP_HOST"] = "127.0.0.1"
        # Where providers (WAHA) send callbacks: this stack's ingress-api.
        env.setdefault("LANEGATE_PUBLIC_URL", f"http://127.0.0.1:{chosen['ingress_api']}")
        log_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            env=env,
            log_dir=log_dir,
            store_port=store_port,
            ports=chosen,
            store_sqlite=store_sqlite,
            store=engine,
        )

    @property
    def store_uri(self) -> str:
        """The wire store's address, as the services reach it."""
        return self.env["LANEGATE_MONGO_URI"]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def _spawn(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args],
                env=dict(env or self.env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_store(self) -> None:
        """Start the wire store and wait for its port (a server at a URI is only waited for)."""
        if self.store.engine == "uri":
            wait_port(self.store_port, 30)
            return
        if self.store.engine == "mongoeco":
            args = ["-m", "devtools.stack", "store", "--port", str(self.store_port)]
            if self.store_sqlite is not None:
                args += ["--sqlite", str(self.store_sqlite.resolve())]
            self._spawn("store", args, cwd=REPO)
        else:
            self._start_ferretdb()
        wait_port(self.store_port, 30)

    def _start_ferretdb(self) -> None:
        """Start FerretDB on the stack's PostgreSQL database (made the first time) or on a
        SQLite directory under the log directory."""
        if not FERRETDB.exists():
            raise FileNotFoundError(f"{FERRETDB} is missing: build it with `make ferretdb`")
        args = [str(FERRETDB), f"--listen-addr=127.0.0.1:{self.store_port}"]
        if self.store.engine == "ferretdb":
            if self.store_database is None:
                name = f"lanegate_{self.log_dir.name}_{self.store_port}".replace("-", "_")
                postgres_database(self.store.postgres_url, name, create=True)
                self.store_database = name
            url = urlunsplit(
                urlsplit(self.store.postgres_url)._replace(
                    path=f"/{self.store_database}", query=f"pool_max_conns={FERRETDB_POOL}"
                )
            )
            args += ["--handler=postgresql", f"--postgresql-url={url}"]
        else:
            data = (self.log_dir / "ferretdb-sqlite").resolve()
            data.mkdir(parents=True, exist_ok=True)
            args += ["--handler=sqlite", f"--sqlite-url=file:{data}/"]
        with (self.log_dir / "store.log").open("ab") as log:
            self.processes["store"] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def start(self, name: str, *, wait: bool = True, env: Mapping[str, str] | None = None) -> None:
        """Start one service (with `env` over the stack's settings) and, by default, wait
        until its /readyz answers 200."""
        self._spawn(name, ["-m", name], {**self.env, **(env or {})})
        if wait:
            wait_http(self.url(name) + "/readyz", 60)

    def start_replica(self, name: str, service: str, *, wait: bool = True) -> None:
        """Start one more replica of `service` as process `name`, on a port of its own."""
        self.ports[name] = port = self.ports.get(name) or free_port()
        self._spawn(name, ["-m", service], {**self.env, port_variable(service): str(port)})
        if wait:
            wait_http(self.url(name) + "/readyz", 60)

    def start_all(self) -> None:
        """Start the store, then every service, then wait until all are ready."""
        self.start_store()
        for name in SERVICES:
            self.start(name, wait=False)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until every running service answers /readyz with 200 (broker and store reached)."""
        for name in self.processes:
            if name != "store":
                wait_http(self.url(name) + "/readyz", timeout)

    def kill(self, name: str) -> None:
        """SIGKILL a process, as a crash would."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop(self, name: str, timeout: float = 20) -> int:
        """SIGTERM a process and wait for it; SIGKILL if it does not exit in time."""
        process = self.processes.pop(name)
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def stop_all(self) -> None:
        """Stop the services, then the store."""
        for name in [n for n in self.processes if n != "store"]:
            try:
                self.stop(name)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within the timeout; killed", file=sys.stderr)
        if "store" in self.processes:
            self.stop("store")
        if self.store_database is not None:
            postgres_database(self.store.postgres_url, self.store_database, create=False)
            self.store_database = None
        if self.store.engine == "ferretdb-sqlite":
            shutil.rmtree(self.log_dir / "ferretdb-sqlite", ignore_errors=True)


@contextmanager
def lone_store(log_dir: Path, store: StoreEngine | None = None) -> Iterator[str]:
    """The wire store alone (mongoeco by default), in a process of its own (a server at a URI
    only waited for), until the block ends; its client URI."""
    stack = Stack.create(log_dir, settings={}, store=store)
    try:
        stack.start_store()
        yield stack.store_uri
    finally:
        stack.stop_all()


async def delete_topology(url: str, namespace: str) -> None:
    """Remove every queue and the exchange a namespace declared (a test's or a benchmark's)."""
    broker = Broker(url, namespace)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue in broker.queue_names():
            await channel.queue_delete(queue)
        await channel.exchange_delete(broker.exchange_name)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.stack")
    sub = parser.add_subparsers(dest="command", required=True)
    store = sub.add_parser("store", help="run the embedded wire store")
    store.add_argument("--host", default="127.0.0.1")
    store.add_argument("--port", type=int, default=27017)
    store.add_argument("--sqlite", help="keep the data in this SQLite file (default: in memory)")
    args = parser.parse_args()
    if args.command == "store":
        serve_store(args.host, args.port, args.sqlite)


if __name__ == "__main__":
    main()
