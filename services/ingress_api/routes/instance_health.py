"""A number's health score over the last days, from its per-day counts."""

from aiohttp import web

from ingress_api.auth import authenticate
from ingress_api.registry import API
from ingress_api.requests import own_instance
from ingress_api.schemas.instance_health import InstanceHealth
from lanegate import health
from lanegate.events import utcnow
from lanegate.service import STORE


@API.get(
    "/instance/{name}/health",
    summary="The number's health score over 7 days: sends, replies, failures, blocks, reports",
    tag="instances",
    response=InstanceHealth,
    errors=(400, 401, 403, 404),
    scope="instances:read",
)
async def instance_health(request: web.Request) -> web.Response:
    """The score and its parts, from the instance's day counts (at most 7 small reads)."""
    store = request.app[STORE]
    instance = await own_instance(store, await authenticate(request), request.match_info["name"])
    totals = await health.totals(store, instance["_id"], utcnow())
    return web.json_response({"instanceName": instance["_id"], **health.view(totals)})
