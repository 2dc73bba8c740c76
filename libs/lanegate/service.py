"""The shell every service runs in: resources, health, metrics, errors, consumers, shutdown."""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import aiormq.exceptions
import structlog
import uvloop
from aiohttp import web
from aiormq.exceptions import ChannelInvalidStateError
from pymongo.errors import ConnectionFailure

from lanegate import logging as lanegate_logging
from lanegate.broker import Broker, Consumer, EventHandler
from lanegate.errors import ApiError, PayloadTooLarge, Unavailable
from lanegate.metrics import DEPENDENCY_UP, http_middleware, metrics_handler
from lanegate.requests_log import access_log, echo_request_id
from lanegate.secrets import PREFIX, Keyring, require_keys
from lanegate.settings import Settings
from lanegate.store import Store

log = structlog.get_logger(__name__)

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
BROKER = web.AppKey("broker", Broker)
KEYRING = web.AppKey("keyring", Keyring)

STARTUP_ATTEMPTS = 30
# Failures of a dependency rather than of the request: answered 503, not 500.
DEPENDENCY_ERRORS = (ConnectionFailure, aiormq.exceptions.AMQPError, ChannelInvalidStateError)


@web.middleware
async def error_boundary(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer ApiErrors with their JSON body; log anything unexpected once and answer 500."""
    try:
        return await handler(request)
    except ApiError as e:
        return web.json_response(e.body(), status=e.status, headers=e.headers)
    except web.HTTPRequestEntityTooLarge:
        e413 = PayloadTooLarge("Request body too large")
        return web.json_response(e413.body(), status=e413.status)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return web.json_response(
            {"error": e.reason, "code": e.reason.upper().replace(" ", "_")},
            status=e.status,
            headers={k: v for k, v in e.headers.items() if k.lower() == "allow"},
        )
    except asyncio.CancelledError:
        raise
    except DEPENDENCY_ERRORS as e:
        # The broker or the store is away for a moment (restart, dropped connection).
        log.warning("dependency unavailable", path=request.path, error=repr(e))
        e503 = Unavailable("A dependency is unavailable, retry shortly")
        return web.json_response(e503.body(), status=e503.status, headers={"Retry-After": "1"})
    except Exception as e:
        if isinstance(e, ConnectionResetError) and _client_gone(request):
            # A download cut short: nothing can be answered, and nothing of ours failed.
            log.info("client went away before its answer", path=request.path)
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        log.exception("unhandled error", path=request.path, method=request.method)
        return web.json_response({"error": "Internal error", "code": "INTERNAL_ERROR"}, status=500)


# Logged and counted for a request whose client hung up before its answer was written
# (nginx's status for it); never sent.
CLIENT_CLOSED_REQUEST = 499


def _client_gone(request: web.Request) -> bool:
    """Whether the client's connection is closed (not some other peer's, such as a provider's)."""
    return request.transport is None or request.transport.is_closing()


async def healthz(_: web.Request) -> web.Response:
    """Liveness: the process answers; dependencies are not checked."""
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the broker connection is open and the store answers a ping."""
    broker_ok = request.app[BROKER].is_ready()
    store_ok = await store_answers(request.app[STORE])
    body = {"broker": broker_ok, "store": store_ok}
    return web.json_response(body, status=200 if broker_ok and store_ok else 503)


async def store_answers(store: Store) -> bool:
    """Whether the store answers a ping within 2 s (recorded in `lanegate_dependency_up`)."""
    try:
        return await asyncio.wait_for(store.ping(), timeout=2)
    except Exception:
        # A ping cut short by the timeout never reached the store's own bookkeeping.
        DEPENDENCY_UP.labels("store").set(0)
        return False


async def check_dependencies(broker: Broker, store: Store) -> None:
    """Refresh `lanegate_dependency_up` for the broker and the store (each check sets it)."""
    broker.is_ready()
    await store_answers(store)


async def dependency_checks(app: web.Application) -> AsyncIterator[None]:
    """Check the dependencies in the background, so the gauge follows them between probes."""

    async def loop() -> None:
        while True:
            await check_dependencies(app[BROKER], app[STORE])
            await asyncio.sleep(app[SETTINGS].metrics_refresh_seconds)

    task = asyncio.create_task(loop(), name="dependency-checks")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _with_retries[T](what: str, connect: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        try:
            return await connect()
        except Exception as e:
            if attempt == STARTUP_ATTEMPTS:
                raise
            log.warning("dependency not reachable yet", dependency=what, error=repr(e))
            await asyncio.sleep(min(attempt, 5))
    raise AssertionError("unreachable")


async def check_secret_key(store: Store, keyring: Keyring) -> None:
    """Refuse to run when stored secrets are sealed and the key cannot open them."""
    sealed = await store.instances.find_one(
        {"webhookSecret": {"$gte": PREFIX, "$lt": PREFIX[:-1] + ";"}}, {"webhookSecret": 1}
    )
    if sealed is not None:
        keyring.decrypt(sealed["webhookSecret"])  # raises SecretKeyError with the reason
    if not keyring.enabled:
        log.warning("LANEGATE_SECRET_KEY is not set: new secrets are stored unencrypted")


# A service's `main.py` builds its app with `base_app`, adds its routes and consumers, and
# hands it to `run`. Resources open in order at startup and close in reverse at cleanup;
# SIGTERM stops consumers first, lets in-flight work finish, then closes connections.
def base_app(settings: Settings, service: str) -> web.Application:
    """An app with health, metrics, the error boundary, and the store and broker opened."""
    app = web.Application(
        middlewares=[access_log, http_middleware(service), error_boundary],
        client_max_size=settings.max_body_bytes,
    )
    app.on_response_prepare.append(echo_request_id)
    app[SETTINGS] = settings
    require_keys(
        settings.secret_key.get_secret_value(),
        settings.admin_key.get_secret_value(),
        development=settings.env == "development",
    )
    app[KEYRING] = Keyring(settings.secret_key.get_secret_value())

    async def resources(app: web.Application) -> AsyncIterator[None]:
        store = Store(settings.mongo_uri.get_secret_value(), settings.mongo_db)
        await _with_retries("store", store.connect)
        app[STORE] = store
        await check_secret_key(store, app[KEYRING])
        broker = Broker(settings.amqp_dsn(), settings.namespace)
        await _with_retries("broker", broker.connect)
        app[BROKER] = broker
        log.info("resources open")
        yield
        try:
            await broker.close()
        finally:
            await store.close()
        log.info("resources closed")

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(dependency_checks)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


def consume(
    app: web.Application, queue: str, handler: Callable[[web.Application], EventHandler]
) -> None:
    """Run a consumer on `queue` for the app's lifetime, stopped gracefully before cleanup."""
    key = web.AppKey(f"consumer:{queue}", Consumer)

    async def start(app: web.Application) -> None:
        settings = app[SETTINGS]
        consumer = Consumer(
            app[BROKER],
            queue,
            handler(app),
            prefetch=settings.prefetch,
            max_attempts=settings.max_attempts,
        )
        await consumer.start()
        app[key] = consumer
        log.info("consuming", queue=consumer.queue)

    async def stop(app: web.Application) -> None:
        if key in app:
            await app[key].stop(app[SETTINGS].shutdown_grace_seconds)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)


async def _freeze_heap(app: web.Application) -> None:
    """on_startup, last: what starting made (modules, models, open connections) lives as long
    as the process, so it leaves the garbage collector's sight. A full collection then walks
    only what came after, instead of pausing every request for tens of milliseconds."""
    gc.collect()
    gc.freeze()
    log.info("started", long_lived_objects=gc.get_freeze_count())


def run(
    service: str, build: Callable[[Settings], web.Application], port: Callable[[Settings], int]
) -> None:
    """Read settings, configure logging, and serve the app on uvloop until SIGTERM or SIGINT."""
    settings = Settings()
    lanegate_logging.configure(settings.log_level, service=service)
    app = build(settings)
    app.on_startup.append(_freeze_heap)
    log.info("starting", port=port(settings))
    web.run_app(
        app,
        host=settings.http_host,
        port=port(settings),
        loop=uvloop.new_event_loop(),
        shutdown_timeout=settings.shutdown_grace_seconds,
        access_log=None,
        print=None,
    )
    log.info("stopped")
