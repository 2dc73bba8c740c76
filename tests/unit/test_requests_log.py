"""The request-id and access-log middleware on a real aiohttp server (the services' own
middleware chain): ids echoed on every answer, one log line per request."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import REGISTRY

from devtools.stack import free_port
from lanegate.errors import NotFound
from lanegate.metrics import http_middleware
from lanegate.requests_log import access_log, current, echo_request_id, note_tenant
from lanegate.service import error_boundary

HEX_ID = re.compile(r"[0-9a-f]{32}")


async def tenant_route(request: web.Request) -> web.Response:
    note_tenant(request, "acme")
    return web.json_response({"seen": current.get()})


async def missing(_: web.Request) -> web.Response:
    raise NotFound("Instance x not found")


async def streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"chunk")
    return response


async def long_stream(request: web.Request) -> web.StreamResponse:
    """A download bigger than the client reads before it hangs up."""
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(1000):
        await response.write(b"x" * 65536)
        await asyncio.sleep(0.001)
    await response.write_eof()
    return response


async def peer_reset(_: web.Request) -> web.Response:
    """A connection reset by some other peer (a provider's), with the client still there."""
    raise ConnectionResetError("provider hung up")


async def crashing(_: web.Request) -> web.Response:
    raise RuntimeError("bug")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[str]:
    app = web.Application(middlewares=[access_log, http_middleware("test"), error_boundary])
    app.on_response_prepare.append(echo_request_id)
    app.router.add_get("/tenants/{id}/thing", tenant_route)
    app.router.add_get("/missing", missing)
    app.router.add_get("/stream", streamed)
    app.router.add_get("/crash", crashing)
    app.router.add_get("/long", long_stream)
    app.router.add_get("/peer-reset", peer_reset)
    app.router.add_get("/healthz", tenant_route)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def get(base: str, path: str, **headers: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(base + path, headers=headers) as answer:
        return answer.status, answer.headers["X-Request-Id"], await answer.read()


async def test_each_answer_echoes_the_id_and_each_request_logs_one_line() -> None:
    with structlog.testing.capture_logs() as logs:
        async with serving() as base:
            status, request_id, body = await get(
                base, "/tenants/1/thing", **{"X-Request-Id": "abc-1"}
            )
            assert (200, "abc-1", b'{"seen": "abc-1"}') == (status, request_id, body)
            answers = [
                await get(base, "/missing"),
                await get(base, "/stream"),
                await get(base, "/crash"),
                await get(base, "/nowhere"),
                await get(base, "/missing", **{"X-Request-Id": "bad id with spaces"}),
            ]
    assert [404, 200, 500, 404, 404] == [status for status, _, _ in answers]
    assert all(HEX_ID.fullmatch(request_id) for _, request_id, _ in answers)
    requests = [line for line in logs if line["event"] == "request"]
    assert [
        ("/tenants/{id}/thing", 200, "acme", "abc-1"),
        ("/missing", 404, None, answers[0][1]),
        ("/stream", 200, None, answers[1][1]),
        ("/crash", 500, None, answers[2][1]),
        ("unmatched", 404, None, answers[3][1]),
        ("/missing", 404, None, answers[4][1]),
    ] == [(x["path"], x["status"], x["tenant"], x["request_id"]) for x in requests]
    assert all(x["method"] == "GET" and x["duration_ms"] >= 0 for x in requests)
    assert all(x["log_level"] == "info" for x in requests)


async def test_probes_are_logged_at_debug_only() -> None:
    with structlog.testing.capture_logs() as logs:
        async with serving() as base:
            status, request_id, _ = await get(base, "/healthz")
    assert 200 == status and HEX_ID.fullmatch(request_id)
    (line,) = [x for x in logs if x["event"] == "request"]
    assert ("debug", "/healthz") == (line["log_level"], line["path"])


async def test_a_client_hanging_up_mid_download_is_a_499_not_an_error_of_ours() -> None:
    labels = {"service": "test", "method": "GET", "route": "/long", "status": "499"}
    before = REGISTRY.get_sample_value("lanegate_http_requests_total", labels) or 0.0
    with structlog.testing.capture_logs() as logs:
        async with serving() as base:
            async with aiohttp.ClientSession() as http, http.get(base + "/long") as answer:
                assert 200 == answer.status
                await answer.content.readexactly(65536)
            status, _, _ = await get(base, "/peer-reset")
        # The server's shutdown waited for the download's handler, which found the client gone.
    assert 500 == status
    requests = sorted((x["path"], x["status"]) for x in logs if x["event"] == "request")
    assert [("/long", 499), ("/peer-reset", 500)] == requests
    after = REGISTRY.get_sample_value("lanegate_http_requests_total", labels) or 0.0
    assert 1 == after - before
    # Only the other peer's reset is an error of ours.
    assert ["/peer-reset"] == [x["path"] for x in logs if x["event"] == "unhandled error"]
