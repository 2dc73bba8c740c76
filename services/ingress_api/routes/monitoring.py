"""Queues and statistics: what waits, what was sent, and flushing a queue."""

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from ingress_api.auth import authenticate
from ingress_api.registry import API
from ingress_api.requests import clear_waiting, own_instance
from ingress_api.schemas.monitoring import Flushed, Health, QueueCounts, Stats
from lanegate.lanes import LANES
from lanegate.lifecycle import SEND_OUTCOMES, WAITING
from lanegate.service import SETTINGS, STORE
from lanegate.store import Store

log = structlog.get_logger(__name__)

STARTED = web.AppKey("started", float)
# The gateway-wide counts `/health` shows, as last counted in the background.
HEALTH_COUNTS = web.AppKey("health_counts", dict[str, int])


def _queue(by_lane: dict[str, int]) -> dict[str, int]:
    counts = {lane: by_lane.get(lane, 0) for lane in LANES}
    return counts | {"total": sum(counts.values())}


@API.get(
    "/instance/{name}/queue",
    summary="Messages waiting to be sent, per lane",
    tag="monitoring",
    response=QueueCounts,
    errors=(400, 401, 403, 404),
    scope="messages:read",
)
async def queue(request: web.Request) -> web.Response:
    store = request.app[STORE]
    instance = await own_instance(store, await authenticate(request), request.match_info["name"])
    groups = await store.messages.aggregate(
        [
            {"$match": {"instanceName": instance["_id"], "status": {"$in": list(WAITING)}}},
            {"$group": {"_id": "$lane", "n": {"$sum": 1}}},
        ]
    )
    return web.json_response(_queue({g["_id"]: g["n"] async for g in groups}))


@API.post(
    "/instance/{name}/queue/flush",
    summary="Cancel every message still waiting in the instance's queue",
    tag="monitoring",
    response=Flushed,
    errors=(400, 401, 403, 404, 503),
    scope="messages:write",
)
async def flush(request: web.Request) -> web.Response:
    """Waiting messages become `canceled` (a tried one is settled by provider-sender)."""
    store = request.app[STORE]
    instance = await own_instance(store, await authenticate(request), request.match_info["name"])
    flushed = await clear_waiting(request, instance)
    return web.json_response({"instanceName": instance["_id"], "flushed": flushed})


@API.get(
    "/stats",
    summary="Totals and per-instance queues and counts for your tenant",
    tag="monitoring",
    response=Stats,
    errors=(401,),
    scope="messages:read",
)
async def stats(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    names = [
        i["_id"]
        async for i in store.instances.find({"tenantId": caller.tenant_id}, {"_id": 1}).sort(
            "_id", 1
        )
    ]
    groups = await store.messages.aggregate(
        [
            {"$match": {"tenantId": caller.tenant_id}},
            {
                "$group": {
                    "_id": {"i": "$instanceName", "s": "$status", "l": "$lane"},
                    "n": {"$sum": 1},
                }
            },
        ]
    )
    queued: dict[str, dict[str, int]] = defaultdict(dict)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"sent": 0, "failed": 0, "pending": 0})
    async for group in groups:
        name, status, lane, n = group["_id"]["i"], group["_id"]["s"], group["_id"]["l"], group["n"]
        if status in WAITING:
            queued[name][lane] = queued[name].get(lane, 0) + n
            counts[name]["pending"] += n
        elif status in SEND_OUTCOMES:
            counts[name][status] += n
    per_instance: list[dict[str, Any]] = [
        {"instanceName": name, "queue": _queue(queued[name]), "messages": counts[name]}
        for name in names
    ]
    totals = {
        "queued": sum(c["pending"] for c in counts.values()),
        "sent": sum(c["sent"] for c in counts.values()),
        "failed": sum(c["failed"] for c in counts.values()),
    }
    return web.json_response(
        {"instances": len(names), "totals": totals, "perInstance": per_instance}
    )


@API.get(
    "/health",
    summary="Gateway summary for monitors (no key needed)",
    tag="monitoring",
    response=Health,
    auth="none",
)
async def health(request: web.Request) -> web.Response:
    """The unauthenticated health summary, from counts refreshed in the background, so
    a flood of health checks costs the store nothing."""
    counts: dict[str, int] = request.app[HEALTH_COUNTS]
    uptime = int(time.monotonic() - request.app[STARTED])
    return web.json_response({"status": "ok", **counts, "uptime": uptime})


async def count_for_health(store: Store) -> dict[str, int]:
    """The gateway-wide counts `/health` shows."""
    return {
        "tenants": await store.tenants.count_documents({}),
        "instances": await store.instances.count_documents({}),
        "queuedMessages": await store.messages.count_documents({"status": {"$in": list(WAITING)}}),
    }


async def health_counts(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: count before serving, then again every `health_refresh_seconds` until
    cleanup; a failed count keeps the last figures."""
    app[HEALTH_COUNTS] = {"tenants": 0, "instances": 0, "queuedMessages": 0}
    every = app[SETTINGS].health_refresh_seconds

    async def refresh() -> None:
        try:
            app[HEALTH_COUNTS] = await count_for_health(app[STORE])
        except Exception as e:  # the store away for a moment: keep the last figures
            log.warning("health counts not refreshed", error=repr(e))

    async def keep_refreshing() -> None:
        while True:
            await asyncio.sleep(every)
            await refresh()

    await refresh()
    task = asyncio.create_task(keep_refreshing())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
