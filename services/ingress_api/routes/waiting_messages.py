"""Changing a waiting message: approve, reject, cancel, and clearing an instance's line."""

import structlog
from aiohttp import web

from ingress_api.auth import Caller, authenticate
from ingress_api.registry import API
from ingress_api.schemas.messages import MessageChanged
from lanegate import lifecycle
from lanegate.errors import Conflict, NotFound, Unavailable
from lanegate.events import accepted, canceled, utcnow
from lanegate.lifecycle import CANCELABLE, HANDED_OVER, Status, public
from lanegate.service import BROKER, STORE
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)


async def _refuse(
    store: Store, caller: Caller, message_id: str, expected: tuple[Status, ...]
) -> NotFound | Conflict:
    """Why one of the caller's messages did not move out of `expected`: 404 if unknown, 409 if
    too late.

    A message provider-sender already tried may be on the phone: it no longer changes.
    """
    current = await store.messages.find_one(
        {"_id": message_id, "tenantId": caller.tenant_id}, {"status": 1, "attempts": 1}
    )
    if current is None:
        return NotFound("Message not found")
    if current["status"] in expected:
        if current.get("attempts"):
            return Conflict(
                "Message is waiting to be sent again after an attempt that may have reached"
                " the phone; it can no longer change"
            )
        return Conflict("Message changed while this request ran; retry")
    status = public(current["status"])
    if current["status"] in HANDED_OVER:
        status = "being sent"
    return Conflict(f"Message is {status}; only {' or '.join(expected)} messages can change")


async def _tell_scheduler(request: web.Request, message: Document, status: Status) -> None:
    """Let the scheduler forget the message now; if this is lost, its claim fails later anyway."""
    try:
        await request.app[BROKER].publish(
            canceled(message, "rejected" if status == Status.REJECTED else "canceled")
        )
    except Exception as e:
        log.warning("cancel not announced; the scheduler skips it at dispatch", error=repr(e))


@API.post(
    "/message/{id}/approve",
    summary="Approve a message that requires approval; it joins its lane",
    tag="messages",
    response=MessageChanged,
    errors=(401, 404, 409, 503),
    scope="messages:write",
)
async def approve(request: web.Request) -> web.Response:
    """Move a `pending_approval` message to `pending` and hand it to the scheduler."""
    caller = await authenticate(request)
    store = request.app[STORE]
    message_id = request.match_info["id"]
    match = {"_id": message_id, "tenantId": caller.tenant_id}
    message = await lifecycle.approve(store, match, utcnow())
    if message is None:
        raise await _refuse(store, caller, message_id, (Status.PENDING_APPROVAL,))
    try:
        await request.app[BROKER].publish(accepted({**message, "status": Status.PENDING}))
    except Exception as e:
        # Not published means nobody plans it: put it back so the answer stays true.
        await lifecycle.take_back_approval(store, message_id)
        raise Unavailable("Message queue unavailable, retry shortly") from e
    log.info("message approved", message_id=message_id)
    return web.json_response({"id": message_id, "status": Status.PENDING})


@API.post(
    "/message/{id}/reject",
    summary="Reject a message that requires approval; it is never sent",
    tag="messages",
    response=MessageChanged,
    errors=(401, 404, 409),
    scope="messages:write",
)
async def reject(request: web.Request) -> web.Response:
    """Move a `pending_approval` message to `rejected`."""
    return await _retire(request, (Status.PENDING_APPROVAL,), Status.REJECTED)


@API.post(
    "/message/{id}/cancel",
    summary="Cancel a message not yet dispatched",
    tag="messages",
    response=MessageChanged,
    errors=(401, 404, 409),
    scope="messages:write",
)
async def cancel(request: web.Request) -> web.Response:
    """Move a `pending` or `pending_approval` message to `canceled`."""
    return await _retire(request, CANCELABLE, Status.CANCELED)


async def _retire(
    request: web.Request, allowed: tuple[Status, ...], status: Status
) -> web.Response:
    """Take a message that has not gone yet out of its line for good."""
    caller = await authenticate(request)
    store = request.app[STORE]
    message_id = request.match_info["id"]
    match = {"_id": message_id, "tenantId": caller.tenant_id}
    message = await lifecycle.retire(store, match, status, utcnow(), allowed=allowed)
    if message is None:
        raise await _refuse(store, caller, message_id, allowed)
    await _tell_scheduler(request, message, status)
    return web.json_response({"id": message_id, "status": status})
