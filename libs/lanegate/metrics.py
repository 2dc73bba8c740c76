"""Metrics every service exports, the HTTP middleware that records them, and `/metrics`."""

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from lanegate import __version__

# A `_created` series per counter and histogram doubles what is scraped and nothing queries it.
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter(
    "lanegate_http_requests_total",
    "HTTP requests answered, by route and status.",
    ["service", "method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "lanegate_http_request_seconds",
    "Time to answer an HTTP request.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_CONSUMED = Counter(
    "lanegate_events_consumed_total",
    "Broker deliveries handled, by queue and outcome (ack, retry, dead).",
    ["queue", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "lanegate_events_published_total",
    "Events published with a broker confirm, by routing key.",
    ["routing_key"],
)
DEPENDENCY_UP = Gauge(
    "lanegate_dependency_up",
    "1 when the last check of a dependency (broker, store) succeeded.",
    ["dependency"],
)
BUILD_INFO = Gauge(
    "lanegate_build_info", "Always 1; labels carry the build.", ["version", "service"]
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_middleware(service: str) -> Middleware:
    """Build a middleware that counts and times every request by its route template."""
    BUILD_INFO.labels(__version__, service).set(1)

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            HTTP_REQUESTS.labels(service, request.method, route, str(status)).inc()
            HTTP_SECONDS.labels(service, request.method, route).observe(
                time.perf_counter() - started
            )

    return record


async def metrics_handler(_: web.Request) -> web.Response:
    """Serve the process's metrics in the Prometheus text format."""
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
