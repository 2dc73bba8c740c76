"""The request-id and access-log middleware on a real aiohttp server (the services' own
middleware chain): ids echoed on every answer, one log line per request."""

import contextlib
import re
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

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
