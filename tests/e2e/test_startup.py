"""Every service, once started, keeps what starting made out of the collector's full
collections: walking it paused every request for tens of milliseconds."""

import json

import pytest

from devtools.stack import SERVICES
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def _events(gateway: Gateway, service: str) -> list[dict[str, object]]:
    lines = (gateway.stack.log_dir / f"{service}.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def test_every_service_freezes_what_it_made_starting(gateway: Gateway) -> None:
    for service in SERVICES:
        started = [e for e in _events(gateway, service) if e["event"] == "started"]
        # Modules, models and open connections: tens of thousands of objects.
        assert started, service
        assert all(int(str(e["long_lived_objects"])) > 10_000 for e in started), started
