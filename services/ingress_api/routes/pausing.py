"""Pausing and resuming a number: its messages wait (nothing is dropped) until it is resumed.
The pause is stored on the instance, then announced to lane-scheduler and provider-sender."""

from aiohttp import web

from ingress_api.auth import authenticate
from ingress_api.registry import API
from ingress_api.requests import own_instance, pause_view, read_json
from ingress_api.schemas.instances import PauseRequest, PauseState
from lanegate.errors import Unavailable
from lanegate.events import Event, InstancePaused, InstanceResumed, utcnow
from lanegate.service import BROKER, STORE

TENANT_REASON = "paused by the tenant"


async def _announce(request: web.Request, event: Event) -> None:
    try:
        await request.app[BROKER].publish(event)
    except Exception as e:
        raise Unavailable("Saved; the scheduler could not be told yet, retry") from e


@API.post(
    "/instance/{name}/pause",
    summary="Hold the instance's messages until it is resumed (or until `until`)",
    tag="instances",
    body=PauseRequest,
    response=PauseState,
    errors=(400, 401, 403, 404, 503),
    scope="instances:write",
)
async def pause(request: web.Request) -> web.Response:
    """Pause the number: nothing is sent from it, nothing is dropped; scheduled and expiring
    messages keep their times."""
    caller = await authenticate(request)
    body = await read_json(request, PauseRequest) if request.can_read_body else PauseRequest()
    store = request.app[STORE]
    instance = await own_instance(store, caller, request.match_info["name"])
    now = utcnow()
    reason = body.reason or TENANT_REASON
    paused = {"reason": reason, "since": now, "until": body.until, "by": "tenant"}
    await store.instances.update_one(
        {"_id": instance["_id"], "tenantId": caller.tenant_id}, {"$set": {"paused": paused}}
    )
    await _announce(
        request,
        InstancePaused(
            occurredAt=now,
            tenantId=caller.tenant_id,
            instanceName=instance["_id"],
            reason=reason,
            until=body.until,
            by="tenant",
        ),
    )
    return web.json_response(
        {"instanceName": instance["_id"], "pause": pause_view({"paused": paused})}
    )


@API.post(
    "/instance/{name}/resume",
    summary="Send the instance's messages again: lifts its pause, a provider's ban included",
    tag="instances",
    response=PauseState,
    errors=(400, 401, 403, 404, 503),
    scope="instances:write",
)
async def resume(request: web.Request) -> web.Response:
    """Lift the tenant's pause and a provider's ban alike: the number sends again."""
    caller = await authenticate(request)
    store = request.app[STORE]
    instance = await own_instance(store, caller, request.match_info["name"])
    await store.instances.update_one(
        {"_id": instance["_id"], "tenantId": caller.tenant_id}, {"$set": {"paused": None}}
    )
    lifted = instance.get("paused")
    await _announce(
        request,
        InstanceResumed(
            tenantId=caller.tenant_id,
            instanceName=instance["_id"],
            pausedUntil=lifted.get("until") if isinstance(lifted, dict) else None,
        ),
    )
    return web.json_response({"instanceName": instance["_id"], "pause": None})
