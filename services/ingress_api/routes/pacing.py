"""An instance's lanes as they stand: settings, today's caps (warm-up included) and usage."""

import time
from datetime import datetime
from typing import Any

from aiohttp import web

from ingress_api.auth import authenticate
from ingress_api.registry import API
from ingress_api.requests import own_instance
from ingress_api.schemas.pacing import LaneUsage
from lanegate.lanes import LANES, pacing_for
from lanegate.service import STORE

HOUR = 3600.0


def days_connected(first_connected_at: datetime | None, pacing_tz: Any, now: float) -> int:
    """Calendar days since the instance first connected, in its time zone (0 on that day)."""
    if first_connected_at is None:
        return 0
    today = datetime.fromtimestamp(now, pacing_tz).date()
    return (today - first_connected_at.astimezone(pacing_tz).date()).days


@API.get(
    "/instance/{name}/lanes",
    summary="Each lane's gap and caps today, and how much of them is used",
    tag="instances",
    response=LaneUsage,
    errors=(400, 401, 403, 404),
    scope="instances:read",
)
async def lanes(request: web.Request) -> web.Response:
    store = request.app[STORE]
    instance = await own_instance(store, await authenticate(request), request.match_info["name"])
    pacing = pacing_for(instance)
    record = await store.lane_state.find_one({"_id": instance["_id"]}, {"usage": 1}) or {}
    usage = record.get("usage") or {}
    now = time.time()
    today = datetime.fromtimestamp(now, pacing.timezone).date().isoformat()
    days = days_connected(instance.get("firstConnectedAt"), pacing.timezone, now)
    answer = {}
    for lane in LANES:
        policy = pacing.lanes[lane]
        answer[lane] = {
            "delayMs": [round(policy.min_delay * 1000), round(policy.max_delay * 1000)],
            "perHour": policy.per_hour,
            "perDay": pacing.day_cap(lane, days),
            "usedLastHour": sum(1 for at in usage.get("hour", {}).get(lane, []) if at > now - HOUR),
            "usedToday": usage.get("dayCounts", {}).get(lane, 0)
            if usage.get("day") == today
            else 0,
        }
    paced = "throughput" if pacing.throughput is not None else "anti-ban"
    return web.json_response(
        {
            "instanceName": instance["_id"],
            "timezone": str(pacing.timezone),
            "pacing": paced,
            "lanes": answer,
        }
    )
