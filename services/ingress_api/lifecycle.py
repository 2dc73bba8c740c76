"""A waiting message's lifecycle: approve, reject, cancel (conditional changes, never blind)."""

import structlog
from aiohttp import web
from pymongo import ReturnDocument

from ingress_api.auth import Caller, caller
from ingress_api.endpoints import API
from lanegate.api import MessageChanged
from lanegate.errors import Conflict, NotFound, Unavailable
from lanegate.events import accepted, canceled, utcnow
from lanegate.lifecycle import CANCELABLE, HANDED_OVER, UNTRIED, Status, cancelable, public
from lanegate.service import BROKER, STORE
from lanegate.store import Document, Store
from lanegate.withdrawal import withdraw_one

log = structlog.get_logger(__name__)


async def _change(
    store: Store, who: Caller, message_id: str, expected: list[str], changes: Document
) -> Document:
    """Move one of the caller's messages out of `expected`; 404 if unknown, 409 if too late.

    A message provider-sender already tried may be on the phone: it no longer changes.
    """
    message = await store.messages.find_one_and_update(
        {"_id": message_id, "tenantId": who.tenant_id, "status": {"$in": expected}, **UNTRIED},
        {"$set": changes},
        return_document=ReturnDocument.BEFORE,
    )
    if message is not None:
        return message
    current = await store.messages.find_one(
        {"_id": message_id, "tenantId": who.tenant_id}, {"status": 1, "attempts": 1}
    )
    if current is None:
        raise NotFound("Message not found")
    if current["status"] in expected:
        if current.get("attempts"):
            raise Conflict(
                "Message is waiting to be sent again after an attempt that may have reached"
                " the phone; it can no longer change"
            )
        raise Conflict("Message changed while this request ran; retry")
    status = public(current["status"])
    if current["status"] in HANDED_OVER:
        status = "being sent"
    raise Conflict(f"Message is {status}; only {' or '.join(expected)} messages can change")


async def _tell_scheduler(request: web.Request, message: Document, status: str) -> None:
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
    who = await caller(request)
    store = request.app[STORE]
    message_id = request.match_info["id"]
    message = await _change(
        store, who, message_id, ["pending_approval"], {"status": "pending", "approvedAt": utcnow()}
    )
    try:
        await request.app[BROKER].publish(accepted({**message, "status": "pending"}))
    except Exception as e:
        # Not published means nobody plans it: put it back so the answer stays true.
        await store.messages.update_one(
            {"_id": message_id, "status": "pending"}, {"$set": {"status": "pending_approval"}}
        )
        raise Unavailable("Message queue unavailable, retry shortly") from e
    log.info("message approved", message_id=message_id)
    return web.json_response({"id": message_id, "status": "pending"})


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
    return await _retire(request, [Status.PENDING_APPROVAL], Status.REJECTED, "rejectedAt")


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
    return await _retire(request, list(CANCELABLE), Status.CANCELED, "canceledAt")


async def _retire(
    request: web.Request, allowed: list[str], status: str, stamp: str
) -> web.Response:
    """Take a message that has not gone yet out of its line for good."""
    who = await caller(request)
    message_id = request.match_info["id"]
    message = await _change(
        request.app[STORE], who, message_id, allowed, {"status": status, stamp: utcnow()}
    )
    await _tell_scheduler(request, message, status)
    return web.json_response({"id": message_id, "status": status})


async def clear_waiting(request: web.Request, instance_name: str) -> int:
    """Take every waiting message of an instance out of its queue (a flush, a delete); a count.

    Untried ones become `canceled`. One back in `pending` after an attempt that may have
    reached the phone is withdrawn through provider-sender, which asks the provider: `sent`
    if it has the message, `canceled` if it surely has not, else `failed` (outcome_unknown).
    It is never sent again.
    """
    store, now = request.app[STORE], utcnow()
    untried = await store.messages.update_many(
        cancelable({"instanceName": instance_name}),
        {"$set": {"status": "canceled", "canceledAt": now}},
    )
    withdrawn = 0
    match = {"instanceName": instance_name}
    while await withdraw_one(store, request.app[BROKER], match, "canceled", now):
        withdrawn += 1
    return untried.modified_count + withdrawn
