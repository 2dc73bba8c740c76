"""lane-scheduler wiring: take shards and rebuild them from the store, then consume events."""

import socket
from collections.abc import AsyncIterator

from aiohttp import web

from lane_scheduler.scheduler import Scheduler
from lanegate.broker import EventHandler
from lanegate.service import BROKER, SETTINGS, STORE, base_app, consume, run
from lanegate.settings import Settings

SCHEDULER = web.AppKey("scheduler", Scheduler)


def replica_id(settings: Settings) -> str:
    """This replica's name: configured, or host and port (stable across a restart in place)."""
    return settings.scheduler_replica_id or f"{socket.gethostname()}:{settings.scheduler_port}"


async def scheduler(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    instance = Scheduler(
        app[STORE],
        app[BROKER],
        replica=replica_id(settings),
        dispatch_timeout=settings.dispatch_timeout_seconds,
        lease_seconds=settings.scheduler_lease_seconds,
    )
    await instance.start()
    app[SCHEDULER] = instance
    yield
    await instance.stop()


def handler(app: web.Application) -> EventHandler:
    return app[SCHEDULER].router.route


def build(settings: Settings) -> web.Application:
    """The lane-scheduler application."""
    app = base_app(settings, "lane-scheduler")
    app.cleanup_ctx.append(scheduler)
    consume(app, "lane-scheduler", handler)
    return app


def main() -> None:
    run("lane-scheduler", build, lambda s: s.scheduler_port)
