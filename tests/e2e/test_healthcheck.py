"""The image's HEALTHCHECK against the running services: each asked on its own port."""

import subprocess
import sys

import pytest

from lanegate.healthcheck import SERVICE_PORT_FIELDS, health_url, service_of
from lanegate.settings import Settings
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def healthcheck(gateway: Gateway, pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lanegate.healthcheck", str(pid)],
        env=gateway.stack.env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_each_service_is_healthy_on_the_port_its_settings_give(gateway: Gateway) -> None:
    for service in SERVICE_PORT_FIELDS:
        process = gateway.stack.processes[service]
        answered = healthcheck(gateway, process.pid)
        assert 0 == answered.returncode, (service, answered.stderr)


def test_a_process_running_no_service_is_unhealthy(gateway: Gateway) -> None:
    store = gateway.stack.processes.get("store")
    pid = store.pid if store is not None else 1
    answered = healthcheck(gateway, pid)
    assert (1, True) == (answered.returncode, "not a lanegate service" in answered.stderr)


def test_the_port_follows_the_service_and_its_setting() -> None:
    settings = Settings(scheduler_port=9181, dispatcher_port=9183)
    assert "http://127.0.0.1:9181/healthz" == health_url(
        ["/opt/venv/bin/python", "-m", "lane_scheduler"], settings
    )
    assert "http://127.0.0.1:9183/healthz" == health_url(
        ["python", "-X", "dev", "-m", "webhook_dispatcher"], settings
    )
    assert service_of(["python", "-m", "devtools.stack", "store"]) is None
    assert service_of(["python", "lane_scheduler"]) is None
