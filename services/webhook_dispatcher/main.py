"""webhook-dispatcher wiring: the HTTP client, the deliverer, its retry poller, one consumer."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from lanegate.broker import EventHandler
from lanegate.outbound import Outbound
from lanegate.service import KEYRING, SETTINGS, STORE, base_app, consume, run
from lanegate.settings import Settings
from webhook_dispatcher.backlog import count_backlog
from webhook_dispatcher.deliveries import Deliverer, Policy
from webhook_dispatcher.poller import Poller
from webhook_dispatcher.records import Records

HTTP = web.AppKey("http", Outbound)
DELIVERER = web.AppKey("deliverer", Deliverer)
POLLER = web.AppKey("poller", Poller)

# A claim outlives one attempt's timeout by this much before another replica may take it.
LEASE_MARGIN_SECONDS = 30.0


async def http_client(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[HTTP] = client = Outbound(
        allow_private=settings.allow_private_targets,
        timeout=settings.webhook_timeout_seconds,
        connections=500,
    )
    yield
    await client.close()


async def deliverer(app: web.Application) -> AsyncIterator[None]:
    """The deliverer and its retry poller, running between the store opening and closing."""
    settings = app[SETTINGS]
    records = Records(
        app[STORE], lease_seconds=settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
    )
    policy = Policy(
        timeout=settings.webhook_timeout_seconds,
        schedule=settings.webhook_retry_schedule_seconds,
        jitter=settings.webhook_retry_jitter,
        disable_after=settings.webhook_disable_after_seconds,
    )
    app[DELIVERER] = instance = Deliverer(
        records,
        app[HTTP],
        policy,
        concurrency=settings.webhook_endpoint_concurrency,
        keyring=app[KEYRING],
    )
    poller = Poller(records, instance, interval=settings.webhook_poll_interval_seconds)
    app[POLLER] = poller
    poller.start()
    backlog = asyncio.create_task(
        count_backlog(records, interval=settings.metrics_refresh_seconds), name="webhook-backlog"
    )
    yield
    backlog.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await backlog
    await poller.stop()


async def stop_delivering(app: web.Application) -> None:
    """On SIGTERM: no new claims, and running attempts get the grace period to finish."""
    if POLLER in app:
        await app[POLLER].stop()
    if DELIVERER in app:
        await app[DELIVERER].pool.close(app[SETTINGS].shutdown_grace_seconds)


def handler(app: web.Application) -> EventHandler:
    return app[DELIVERER].handle


def build(settings: Settings) -> web.Application:
    """The webhook-dispatcher application."""
    app = base_app(settings, "webhook-dispatcher")
    app.cleanup_ctx.append(http_client)
    app.cleanup_ctx.append(deliverer)
    consume(app, "webhook-dispatcher", handler)
    app.on_shutdown.append(stop_delivering)
    return app


def main() -> None:
    run("webhook-dispatcher", build, lambda s: s.dispatcher_port)
