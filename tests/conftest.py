"""The stacks tests share: one real stack per test session (the wire store and the five
service processes), the provider simulators and webhook receivers."""

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from pymongo import AsyncMongoClient

from devtools.stack import Stack, StoreEngine, delete_topology, lone_store, wait_http
from lanegate.broker import Broker
from lanegate.secrets import new_key
from lanegate.store import Document, Store
from tests.simulators.meta import MetaSimulator
from tests.simulators.waha import WahaSimulator
from tests.support.gateway import Gateway
from tests.support.hooks import DISABLE_AFTER, SCHEDULE
from tests.support.receiver import Receiver
from tests.support.store_proxy import StoreProxy

# Property tests draw the same examples every run: a run never fails by the luck of the draw.
settings.register_profile("lanegate", derandomize=True, deadline=None, database=None)
settings.load_profile("lanegate")

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Stored secrets are sealed with it; tests that read the store open them with it too.
SECRET_KEY = new_key()
# The wire store every stack of the session runs on: LANEGATE_TEST_STORE (mongoeco, ferretdb,
# ferretdb-sqlite, uri) and LANEGATE_TEST_STORE_URI choose it; `make test` picks ferretdb.
STORE_ENGINE = StoreEngine.from_environment(os.environ)


@contextlib.contextmanager
def whole_stack(**overrides: str) -> Iterator[Gateway]:
    """The store and the five services under a fresh namespace, with the tests' settings and
    `overrides` over them."""
    namespace = f"lgtest-{uuid.uuid4().hex[:8]}"
    admin_key = secrets.token_urlsafe(32)
    log_dir = Path("var/test-logs") / namespace
    stack = Stack.create(
        log_dir,
        settings={
            "LANEGATE_AMQP_URL": AMQP_URL,
            "LANEGATE_NAMESPACE": namespace,
            "LANEGATE_MONGO_DB": "lanegate_test",
            "LANEGATE_ADMIN_KEY": admin_key,
            "LANEGATE_SECRET_KEY": SECRET_KEY,
            "LANEGATE_ALLOW_PRIVATE_TARGETS": "true",
            # Tests speak as the proxy in front of the gateway: X-Forwarded-For names clients.
            "LANEGATE_TRUSTED_PROXIES": '["127.0.0.1/32"]',
            "LANEGATE_SANDBOX_DELIVERED_AFTER_SECONDS": "0.2",
            "LANEGATE_SANDBOX_READ_AFTER_SECONDS": "0.4",
            "LANEGATE_DISPATCH_TIMEOUT_SECONDS": "5",
            "LANEGATE_SHUTDOWN_GRACE_SECONDS": "5",
            "LANEGATE_LOG_LEVEL": "INFO",
            "LANEGATE_PROVIDER_BACKOFF_SECONDS": "0.3",
            "LANEGATE_PROVIDER_MAX_ATTEMPTS": "3",
            "LANEGATE_PROVIDER_TIMEOUT_SECONDS": "3",
            "LANEGATE_RPC_TIMEOUT_SECONDS": "3",
            # Short of the provider timeout: a number check held longer still succeeds.
            "LANEGATE_NUMBER_CHECK_WAIT_SECONDS": "2",
            "LANEGATE_TEMPLATE_SYNC_INTERVAL_SECONDS": "5",
            "LANEGATE_TEMPLATE_SYNC_BACKOFF_SECONDS": "1",
            # A failing webhook is dead after a few seconds (the console replays one).
            "LANEGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0.5, 1, 2]",
            "LANEGATE_WEBHOOK_POLL_INTERVAL_SECONDS": "0.2",
            "LANEGATE_ATTACHMENT_MAX_BYTES": "262144",
        }
        | overrides,
        store=STORE_ENGINE,
    )
    try:
        stack.start_all()
        yield Gateway(stack=stack, admin_key=admin_key, namespace=namespace)
    finally:
        stack.stop_all()
        asyncio.run(delete_topology(AMQP_URL, namespace))


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    with whole_stack() as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver().start()
    yield hook
    hook.stop()


@pytest.fixture(scope="session")
def meta() -> Iterator[MetaSimulator]:
    simulator = MetaSimulator().start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="session")
def waha() -> Iterator[WahaSimulator]:
    simulator = WahaSimulator().start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="session")
def hooks() -> Iterator[Gateway]:
    """A small stack (store, ingress-api, webhook-dispatcher) with a shrunk retry schedule."""
    namespace = f"lgtest-{uuid.uuid4().hex[:8]}"
    admin_key = secrets.token_urlsafe(32)
    stack = Stack.create(
        Path("var/test-logs") / namespace,
        settings={
            "LANEGATE_AMQP_URL": AMQP_URL,
            "LANEGATE_NAMESPACE": namespace,
            "LANEGATE_MONGO_DB": "lanegate_test",
            "LANEGATE_ADMIN_KEY": admin_key,
            "LANEGATE_SECRET_KEY": SECRET_KEY,
            "LANEGATE_ALLOW_PRIVATE_TARGETS": "true",
            "LANEGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS": SCHEDULE,
            "LANEGATE_WEBHOOK_POLL_INTERVAL_SECONDS": "0.1",
            "LANEGATE_WEBHOOK_DISABLE_AFTER_SECONDS": str(DISABLE_AFTER),
            "LANEGATE_SHUTDOWN_GRACE_SECONDS": "2",
        },
        store=STORE_ENGINE,
    )
    try:
        stack.start_store()
        stack.start("ingress_api", wait=False)
        stack.start("webhook_dispatcher", wait=False)
        for name in ("ingress_api", "webhook_dispatcher"):
            wait_http(stack.url(name) + "/readyz", 60)
        yield Gateway(stack=stack, admin_key=admin_key, namespace=namespace)
    finally:
        stack.stop_all()
        asyncio.run(delete_topology(AMQP_URL, namespace))


@contextlib.asynccontextmanager
async def own_database(uri: str) -> AsyncIterator[Store]:
    """A database of its own on the wire store at `uri`, dropped after use."""
    database = f"lanegate_own_{uuid.uuid4().hex[:8]}"
    store = Store(uri, database)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()  # the counts it holds are written first
        async with AsyncMongoClient[Document](uri) as client:
            await client.drop_database(database)


@pytest.fixture
async def store(gateway: Gateway) -> AsyncIterator[Store]:
    """A database of this test's own on the session's wire store, dropped after it."""
    async with own_database(gateway.store_uri) as own:
        yield own


@pytest.fixture
async def proxy(gateway: Gateway) -> AsyncIterator[StoreProxy]:
    """The session's store behind a proxy (each test restarts what it ran through it)."""
    store_proxy = StoreProxy(gateway.stack.store_port)
    await store_proxy.start()
    try:
        yield store_proxy
    finally:
        await store_proxy.close()


@pytest.fixture(scope="session")
def store_alone() -> Iterator[str]:
    """Only the wire store, no services (for tests of code that writes the store); its URI."""
    with lone_store(Path("var/test-logs") / f"lgstore-{uuid.uuid4().hex[:8]}", STORE_ENGINE) as uri:
        yield uri


@pytest.fixture
async def bare_store(store_alone: str) -> AsyncIterator[Store]:
    """A database of this test's own on the store-only session store, dropped after it."""
    async with own_database(store_alone) as own:
        yield own


@pytest.fixture
async def bare_broker() -> AsyncIterator[Broker]:
    """A connected broker with the whole topology under a namespace of this test's own."""
    namespace = f"lgtest-{uuid.uuid4().hex[:8]}"
    broker = Broker(AMQP_URL, namespace)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()
        await delete_topology(AMQP_URL, namespace)


@pytest.fixture
async def parts(store: Store) -> AsyncIterator[tuple[Store, Broker]]:
    """A store database and a broker namespace of this test's own."""
    namespace = f"lgparts-{uuid.uuid4().hex[:8]}"
    broker = Broker(AMQP_URL, namespace)
    await broker.connect()
    try:
        yield store, broker
    finally:
        await broker.close()
        await delete_topology(AMQP_URL, namespace)


@pytest.fixture
async def events_broker(hooks: Gateway) -> AsyncIterator[Broker]:
    connection = Broker(AMQP_URL, hooks.namespace)
    await connection.connect()
    yield connection
    await connection.close()
