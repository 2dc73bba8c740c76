"""X-Request-Id on every answer, one structured access log line per request, and the id
carried with the events a request publishes into the logs of the services consuming them."""

import json
import re
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


def log_lines(gateway: Gateway, service: str) -> list[dict[str, Any]]:
    lines = (gateway.stack.log_dir / f"{service}.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def with_id(gateway: Gateway, service: str, request_id: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(gateway, service) if line.get("request_id") == request_id]


async def answer(
    gateway: Gateway, method: str, path: str, headers: dict[str, str], **kw: Any
) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, gateway.api + path, headers=headers, **kw) as response,
    ):
        await response.read()
        return response


async def test_the_callers_id_is_echoed_and_its_request_logged_with_tenant_and_template(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    headers = {"apikey": tenant.key, "X-Request-Id": "trace-0001"}

    response = await answer(gateway, "GET", f"/instance/{tenant.name}/status", headers)

    assert (200, "trace-0001") == (response.status, response.headers["X-Request-Id"])

    async def logged() -> bool:
        return bool(with_id(gateway, "ingress_api", "trace-0001"))

    await eventually(logged)
    (line,) = [x for x in with_id(gateway, "ingress_api", "trace-0001") if x["event"] == "request"]
    assert ("GET", "/instance/{name}/status", 200, tenant.tenant_id) == (
        line["method"],
        line["path"],
        line["status"],
        line["tenant"],
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


async def test_every_answer_carries_an_id_errors_included(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    cases = [
        ("GET", "/health", {}, {}, 200),
        ("GET", "/no/such/route", {}, {}, 404),
        ("GET", "/instances", {"apikey": "lg_wrong"}, {}, 401),
        (
            "POST",
            "/instance/create",
            {"apikey": key, "Content-Type": "application/json"},
            {"data": b"{not json"},
            400,
        ),
        ("GET", "/healthz", {}, {}, 200),
    ]
    seen = set()
    for method, path, headers, body, status in cases:
        response = await answer(gateway, method, path, headers, **body)
        assert status == response.status, path
        request_id = response.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), (path, request_id)
        seen.add(request_id)
    assert len(cases) == len(seen)

    async def logged() -> bool:
        lines = log_lines(gateway, "ingress_api")
        return any(x.get("status") == 401 and x.get("path") == "/instances" for x in lines)

    await eventually(logged)


async def test_an_unusable_id_is_replaced_not_echoed(gateway: Gateway) -> None:
    for presented in ("has spaces in it", "x" * 300, "new\\nline"):
        response = await answer(gateway, "GET", "/health", {"X-Request-Id": presented})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"]), presented


async def test_the_id_reaches_the_logs_of_the_services_consuming_the_requests_events(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    headers = {"apikey": tenant.key, "X-Request-Id": "trace-pause-0002"}

    response = await answer(
        gateway, "POST", f"/instance/{tenant.name}/pause", headers, json={"reason": "trace"}
    )

    assert (200, "trace-pause-0002") == (response.status, response.headers["X-Request-Id"])

    async def scheduler_logged() -> bool:
        return bool(with_id(gateway, "lane_scheduler", "trace-pause-0002"))

    await eventually(scheduler_logged)
    line = with_id(gateway, "lane_scheduler", "trace-pause-0002")[0]
    assert ("lane-scheduler", "instance.paused") == (line["service"], line["event_kind"])
