"""The periodic sync: every cloud_api instance's templates, every interval (jittered)."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from lanegate.service import SETTINGS, STORE
from lanegate.store import Store
from template_sync.sync import SyncFailed, TemplateSync

log = structlog.get_logger(__name__)

CONCURRENCY = 4
FIRST_PASS_WITHIN_SECONDS = 30.0


def jittered(interval: float) -> float:
    """The interval give or take 10 %, so replicas and restarts do not call Meta in step."""
    return interval * random.uniform(0.9, 1.1)


async def sync_all(store: Store, syncer: TemplateSync) -> dict[str, int]:
    """Sync every cloud_api instance; one failing WABA never stops the others."""
    instances = await store.instances.find({"provider": "cloud_api"}).to_list(None)
    results: dict[str, int] = {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(instance: dict[str, object]) -> None:
        async with gate:
            try:
                await syncer.sync(instance)
                result = "ok"
            except SyncFailed as e:
                result = e.code
                log.warning("template sync failed", instance=instance["_id"], error=e.message)
            except Exception:
                result = "error"
                log.exception("template sync crashed", instance=instance["_id"])
            results[result] = results.get(result, 0) + 1

    await asyncio.gather(*(one(i) for i in instances))
    return results


def periodic(
    syncer: web.AppKey[TemplateSync],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running `sync_all` on the configured interval for the app's lifetime."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        interval = app[SETTINGS].template_sync_interval_seconds

        async def loop() -> None:
            await asyncio.sleep(random.uniform(0, min(interval, FIRST_PASS_WITHIN_SECONDS)))
            while True:
                results = await sync_all(app[STORE], app[syncer])
                log.info("template sync pass", instances=sum(results.values()), results=results)
                await asyncio.sleep(jittered(interval))

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run
