"""An instance's lanes as they stand: settings, today's caps (warm-up included) and usage."""

import time

from aiohttp import web

from ingress_api.auth import authenticate
from ingress_api.registry import API
from ingress_api.requests import own_instance
from ingress_api.schemas.pacing import LaneUsage
from lanegate.lanes import LANES, Usage, pacing_for
from lanegate.service import STORE


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
    usage = Usage.from_document(record.get("usage"))
    now = time.time()
    first_connected = instance.get("firstConnectedAt")
    days = pacing.days_connected(first_connected.timestamp() if first_connected else None, now)
    answer = {}
    for lane in LANES:
        policy = pacing.lanes[lane]
        answer[lane] = {
            "delayMs": [round(policy.min_delay * 1000), round(policy.max_delay * 1000)],
            "perHour": policy.per_hour,
            "perDay": pacing.day_cap(lane, days),
            "usedLastHour": usage.used_last_hour(lane, now),
            "usedToday": usage.used_today(lane, now, pacing.timezone),
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
