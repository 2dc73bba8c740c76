"""The periodic sync: every cloud_api instance's templates, every interval (jittered); an
account still syncing from the last pass is skipped, never waited for."""

import asyncio
import contextlib
import functools
import random
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from lanegate.service import SETTINGS, STORE
from lanegate.store import Document, Store
from template_sync.sync import SyncFailed, TemplateSync

log = structlog.get_logger(__name__)

CONCURRENCY = 4
FIRST_PASS_WITHIN_SECONDS = 30.0


def jittered(interval: float) -> float:
    """The interval give or take 10 %, so replicas and restarts do not call Meta in step."""
    return interval * random.uniform(0.9, 1.1)


async def sync_one(syncer: TemplateSync, instance: Document, gate: asyncio.Semaphore) -> None:
    """Sync one instance's templates and log the outcome; a failure stays with its instance."""
    async with gate:
        try:
            await syncer.sync(instance)
        except SyncFailed as e:
            log.warning("template sync failed", instance=instance["_id"], error=e.message)
        except Exception:
            log.exception("template sync crashed", instance=instance["_id"])


async def start_pass(
    store: Store, syncer: TemplateSync, running: dict[str, asyncio.Task[None]]
) -> int:
    """Start syncing every cloud_api instance not still syncing since an earlier pass, without
    waiting for any, so a slow account delays no other's next pass; returns how many started."""
    gate = asyncio.Semaphore(CONCURRENCY)
    started = 0
    for instance in await store.instances.find({"provider": "cloud_api"}).to_list(None):
        name = instance["_id"]
        if name in running:
            continue
        task = asyncio.create_task(sync_one(syncer, instance, gate))
        running[name] = task
        task.add_done_callback(functools.partial(_finished, running, name))
        started += 1
    return started


def _finished(running: dict[str, asyncio.Task[None]], name: str, _: asyncio.Task[None]) -> None:
    running.pop(name, None)


def periodic(
    syncer: web.AppKey[TemplateSync],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context starting a sync pass on the configured interval for the app's
    lifetime; cleanup stops the pass loop and every sync still running."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        interval = app[SETTINGS].template_sync_interval_seconds
        running: dict[str, asyncio.Task[None]] = {}

        async def loop() -> None:
            await asyncio.sleep(random.uniform(0, min(interval, FIRST_PASS_WITHIN_SECONDS)))
            while True:
                try:
                    started = await start_pass(app[STORE], app[syncer], running)
                    log.info("template sync pass", started=started, running=len(running))
                except Exception:
                    log.exception("template sync pass failed")
                await asyncio.sleep(jittered(interval))

        task = asyncio.create_task(loop())
        yield
        stopping = [task, *running.values()]
        for pending in stopping:
            pending.cancel()
        for pending in stopping:
            with contextlib.suppress(asyncio.CancelledError):
                await pending

    return run
