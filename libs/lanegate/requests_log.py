"""Request ids and access logs: every answer carries an `X-Request-Id`, every request leaves
one structured log line, and events published while serving it carry the id to the services
that consume them (as an AMQP header), whose log lines then show it too."""

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

import structlog
from aiohttp import web

log = structlog.get_logger("lanegate.access")

HEADER = "X-Request-Id"
# The AMQP header an event carries the id in.
EVENT_HEADER = "x-request-id"
# A caller's id is kept when it is a plain token of a sane length; anything else (spaces,
# control characters, a kilobyte) is replaced, so no client writes arbitrary text into logs.
ACCEPTED = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Probes and scrapes arrive every few seconds: logged only at debug.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant", str)

current: ContextVar[str | None] = ContextVar("request_id", default=None)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_for(presented: str | None) -> str:
    """The caller's id when it is acceptable, else a new one."""
    if presented and ACCEPTED.match(presented):
        return presented
    return uuid.uuid4().hex


def note_tenant(request: web.Request, tenant_id: str) -> None:
    """Name the tenant a request acts for in its access log line."""
    request[TENANT] = tenant_id


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: put the request's id on its answer, streamed ones included."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[HEADER] = request_id


def adopt(request_id: object) -> None:
    """Continue the request an event came from: later log lines and published events carry
    its id (an event without one leaves nothing bound)."""
    value = request_id.decode() if isinstance(request_id, bytes) else request_id
    if isinstance(value, str) and ACCEPTED.match(value):
        current.set(value)
        structlog.contextvars.bind_contextvars(request_id=value)


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id, echo it on the answer (errors included) and log the request."""
    request_id = request_id_for(request.headers.get(HEADER))
    request[REQUEST_ID] = request_id
    token = current.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                response = await handler(request)
            except web.HTTPException as e:
                # Redirects and the like, raised past the error boundary: the id goes on too.
                status = e.status
                e.headers[HEADER] = request_id
                raise
            status = response.status
            return response
    finally:
        current.reset(token)
        resource = request.match_info.route.resource
        fields = {
            "method": request.method,
            "path": resource.canonical if resource is not None else "unmatched",
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "tenant": request.get(TENANT),
            "request_id": request_id,
        }
        if request.path in QUIET_PATHS:
            log.debug("request", **fields)
        else:
            log.info("request", **fields)
