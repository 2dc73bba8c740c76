"""The fault suite's own RabbitMQ node and stack (store on SQLite, so it survives a restart)."""

import json
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.stack import Stack
from lanegate.secrets import new_key
from tests.conftest import STORE_ENGINE
from tests.faults.rabbit import RabbitNode, available
from tests.support.gateway import Gateway

LONG = "faults_long"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{LONG}: the full scripted fault run (make test-faults, LANEGATE_FAULTS_LONG=1)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("LANEGATE_FAULTS_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="the long fault run: make test-faults")
    for item in items:
        if LONG in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitNode]:
    """A private RabbitMQ node, shut down at the end of the session whatever happens."""
    if not available():
        pytest.fail("the fault suite needs Debian's rabbitmq-server scripts in /usr/lib/rabbitmq")
    base = Path(tempfile.mkdtemp(prefix="lgfaults-rabbit-"))
    node = RabbitNode(base)
    try:
        node.start()
        yield node
    finally:
        node.shutdown()
        shutil.rmtree(base, ignore_errors=True)


# A lease must outlast the store's longest pause. The embedded store answers one request at
# a time; under the long run's 2,500 messages a heartbeat waited 7 s behind a scan, so a 4 s
# lease changed hands every minute (seed 557182793). The short runs stay at 4 s.
LEASE_SECONDS = "12" if os.environ.get("LANEGATE_FAULTS_LONG") == "1" else "4"
# How long a dispatch may go without an outcome before the scheduler publishes it again. With
# the long run's store saturated, provider-sender's queue alone held dispatches longer than
# the short runs' 5 s, and each was published again every 5 s until it went, adding to the
# very backlog that held it (seed 917597951).
DISPATCH_TIMEOUT_SECONDS = "30" if os.environ.get("LANEGATE_FAULTS_LONG") == "1" else "5"
# Webhook retries, 4 minutes in all: longer than the long run's receiver outages.
RETRIES = json.dumps([0.5, 1, 2, 3, *[5] * 5, 10, 20, *[30] * 6])
# Shrunk so faults and their recovery fit in seconds: retries, leases, claims, webhook schedule.
SETTINGS = {
    "LANEGATE_MONGO_DB": "lanegate_test",
    "LANEGATE_SECRET_KEY": new_key(),
    "LANEGATE_ALLOW_PRIVATE_TARGETS": "true",
    "LANEGATE_SANDBOX_DELIVERED_AFTER_SECONDS": "0.2",
    "LANEGATE_SANDBOX_READ_AFTER_SECONDS": "0.4",
    "LANEGATE_DISPATCH_TIMEOUT_SECONDS": DISPATCH_TIMEOUT_SECONDS,
    "LANEGATE_SHUTDOWN_GRACE_SECONDS": "2",
    "LANEGATE_LOG_LEVEL": "INFO",
    "LANEGATE_PROVIDER_BACKOFF_SECONDS": "0.5",
    "LANEGATE_PROVIDER_MAX_ATTEMPTS": "12",
    "LANEGATE_PROVIDER_TIMEOUT_SECONDS": "3",
    "LANEGATE_RPC_TIMEOUT_SECONDS": "3",
    "LANEGATE_SCHEDULER_LEASE_SECONDS": LEASE_SECONDS,
    "LANEGATE_RATE_LIMIT_PER_MINUTE": "1000000",
    "LANEGATE_WEBHOOK_TIMEOUT_SECONDS": "2",
    "LANEGATE_WEBHOOK_POLL_INTERVAL_SECONDS": "0.2",
    "LANEGATE_WEBHOOK_RETRY_JITTER": "0.1",
    "LANEGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS": RETRIES,
}


@pytest.fixture(scope="session")
def fault_gateway(rabbit: RabbitNode) -> Iterator[Gateway]:
    """The five services on the private node, the store keeping its data across restarts
    (mongoeco in a SQLite file, FerretDB in its own database)."""
    if not STORE_ENGINE.runs_here:
        pytest.skip("the fault runs stop and restart the store: not one at a URI")
    namespace = f"lgfaults-{uuid.uuid4().hex[:8]}"
    admin_key = secrets.token_urlsafe(32)
    data = Path(tempfile.mkdtemp(prefix="lgfaults-store-"))
    stack = Stack.create(
        Path("var/test-logs") / namespace,
        settings={
            **SETTINGS,
            "LANEGATE_AMQP_URL": rabbit.url,
            "LANEGATE_NAMESPACE": namespace,
            "LANEGATE_ADMIN_KEY": admin_key,
        },
        store_sqlite=data / "store.sqlite3",
        store=STORE_ENGINE,
    )
    try:
        stack.start_all()
        yield Gateway(stack=stack, admin_key=admin_key, namespace=namespace)
    finally:
        stack.stop_all()
        shutil.rmtree(data, ignore_errors=True)
