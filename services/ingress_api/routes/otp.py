"""One-time codes over WhatsApp and e-mail: send, resend, verify, read, and the templates that
can carry them. Codes are stored only as keyed hashes; the message carrying one shows the mask."""

from datetime import timedelta

import structlog
from aiohttp import web
from pymongo import ReturnDocument

from ingress_api.auth import Caller, authenticate
from ingress_api.countries import send_context
from ingress_api.otp.carriers import AUTHENTICATION, carrier_of, send_code
from ingress_api.otp.limits import (
    KEPT_AFTER,
    MAX_ATTEMPTS,
    MAX_RESENDS,
    RESEND_GAP,
    block_number,
    hourly_send,
    live_code,
    refuse_blocked_number,
    seconds_until,
)
from ingress_api.otp.outcomes import expire_if_due, tell
from ingress_api.registry import API
from ingress_api.requests import own_instance, read_object, validate
from ingress_api.schemas.otp import (
    OtpSend,
    OtpSent,
    OtpTemplates,
    OtpVerified,
    OtpVerify,
    OtpView,
)
from lanegate import lifecycle, otp, usage
from lanegate.errors import InvalidInput, NotFound, RateLimited
from lanegate.events import new_id, utcnow
from lanegate.service import BROKER, KEYRING, SETTINGS, STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

log = structlog.get_logger(__name__)

OTP_ERRORS = (400, 401, 403, 404, 422, 429, 503)


@API.post(
    "/otp/send",
    summary="Send a one-time code on the urgent lane",
    tag="otp",
    body=OtpSend,
    response=OtpSent,
    status=201,
    errors=OTP_ERRORS,
    scope="otp:write",
)
async def send_otp(request: web.Request) -> web.Response:
    """Draw a code, store its hash, then queue the message carrying it."""
    caller = await authenticate(request)
    data = await read_object(request)
    body = validate(OtpSend, data, await send_context(request, caller, data.get("instanceName")))
    store, now = request.app[STORE], utcnow()
    instance = await own_instance(store, caller, body.instanceName)
    content_of = await carrier_of(store, instance, body)
    await refuse_blocked_number(store, caller, body.to, now)
    cap = caller.otp_max_live_codes or request.app[SETTINGS].otp_max_live_codes
    otp_id, code = new_id(), otp.draw_code(body.length)
    expires = now + timedelta(seconds=body.ttlSeconds)
    record: Document = {
        "_id": otp_id,
        "tenantId": caller.tenant_id,
        "instanceName": instance["_id"],
        "to": body.to,
        "codeHash": _hash(request, otp_id, code),
        "status": "pending",
        "attemptsLeft": MAX_ATTEMPTS,
        "resendsLeft": MAX_RESENDS,
        "ttlSeconds": body.ttlSeconds,
        "length": body.length,
        "carrier": content_of,
        "createdAt": now,
        "expiresAt": expires,
        "sends": [now],
        "messageIds": [],
        "verifiedAt": None,
        "externalId": body.externalId,
        "purgeAt": expires + KEPT_AFTER,
    }
    # A send refused (a closed window, an inactive contact) leaves no code behind, and gives
    # its hourly send back.
    async with live_code(store, record, cap, now), hourly_send(store, caller, body.to, now):
        message_id = await send_code(request, caller, record, code)
    await store.otp_codes.update_one({"_id": otp_id}, {"$push": {"messageIds": message_id}})
    _count(store, record, usage.Counted.OTP_SENT)
    log.info("otp sent", otp_id=otp_id, message_id=message_id)
    return web.json_response(
        {
            "id": otp_id,
            "status": "pending",
            "to": body.to,
            "expiresAt": iso_utc(expires),
            "attemptsLeft": MAX_ATTEMPTS,
            "resendsLeft": MAX_RESENDS,
            "messageId": message_id,
        },
        status=201,
    )


@API.post(
    "/otp/{id}/resend",
    summary="Send a new code for an OTP (the old one stops working)",
    tag="otp",
    response=OtpSent,
    status=201,
    errors=OTP_ERRORS,
    scope="otp:write",
)
async def resend_otp(request: web.Request) -> web.Response:
    """A new code and expiry, at most `MAX_RESENDS` times and `RESEND_GAP` apart."""
    caller = await authenticate(request)
    store, now = request.app[STORE], utcnow()
    record = await _own_otp(store, caller, request.match_info["id"])
    record = await expire_if_due(request.app[STORE], request.app[BROKER], record, now)
    if record["status"] != "pending":
        raise InvalidInput([(["id"], f"The code is {record['status']}; send a new one")])
    if record["resendsLeft"] <= 0:
        raise RateLimited(
            f"No resends left ({MAX_RESENDS}); send a new code after this one expires",
            headers={"Retry-After": seconds_until(record["expiresAt"], now)},
        )
    last = record["sends"][-1]
    if now < last + RESEND_GAP:
        raise RateLimited(
            f"Resend at most every {int(RESEND_GAP.total_seconds())} seconds",
            headers={"Retry-After": seconds_until(last + RESEND_GAP, now)},
        )
    await refuse_blocked_number(store, caller, record["to"], now)
    async with hourly_send(store, caller, record["to"], now):
        code = otp.draw_code(record["length"])
        expires = now + timedelta(seconds=record["ttlSeconds"])
        # Conditional on the send it replaces, so two resends at once make one new code.
        renewed = await store.otp_codes.find_one_and_update(
            {"_id": record["_id"], "status": "pending", "sends": record["sends"]},
            {
                "$set": {
                    "codeHash": _hash(request, record["_id"], code),
                    "expiresAt": expires,
                    "purgeAt": expires + KEPT_AFTER,
                    "attemptsLeft": MAX_ATTEMPTS,
                },
                "$inc": {"resendsLeft": -1},
                "$push": {"sends": now},
            },
            return_document=ReturnDocument.AFTER,
        )
        if renewed is None:
            raise RateLimited(
                "Another resend of this code is under way",
                headers={"Retry-After": str(int(RESEND_GAP.total_seconds()))},
            )
        message_id = await send_code(request, caller, renewed, code)
    await store.otp_codes.update_one({"_id": record["_id"]}, {"$push": {"messageIds": message_id}})
    _count(store, record, usage.Counted.OTP_SENT)
    log.info("otp resent", otp_id=record["_id"], message_id=message_id)
    return web.json_response(
        {
            "id": record["_id"],
            "status": "pending",
            "to": record["to"],
            "expiresAt": iso_utc(expires),
            "attemptsLeft": renewed["attemptsLeft"],
            "resendsLeft": renewed["resendsLeft"],
            "messageId": message_id,
        },
        status=201,
    )


@API.post(
    "/otp/verify",
    summary="Check a code: 200 when right, 422 with what is left when not",
    tag="otp",
    body=OtpVerify,
    response=OtpVerified,
    errors=(400, 401, 403, 404, 422),
    scope="otp:write",
)
async def verify_otp(request: web.Request) -> web.Response:
    """A right code verifies once (a conditional update lets one of two racing checks through);
    a wrong one costs an attempt, and the last attempt blocks the code and the number."""
    caller = await authenticate(request)
    data = await read_object(request)
    body = validate(OtpVerify, data, await send_context(request, caller, data.get("instanceName")))
    store, now = request.app[STORE], utcnow()
    record = await expire_if_due(
        request.app[STORE], request.app[BROKER], await _otp_to_verify(store, caller, body), now
    )
    if record["status"] != "pending":
        return _refused(record["status"], record["attemptsLeft"])
    keys = otp.hash_keys(request.app[KEYRING])
    if otp.code_matches(keys, record["_id"], body.code, record["codeHash"]):
        verified = await store.otp_codes.find_one_and_update(
            {
                "_id": record["_id"],
                "status": "pending",
                "codeHash": record["codeHash"],
                "expiresAt": {"$gt": now},
                "attemptsLeft": {"$gt": 0},
            },
            {"$set": {"status": "verified", "verifiedAt": now, "purgeAt": now + KEPT_AFTER}},
            return_document=ReturnDocument.AFTER,
        )
        if verified is not None:
            _count(store, record, usage.Counted.OTP_VERIFIED)
            log.info("otp verified", otp_id=record["_id"])
            await tell(request.app[BROKER], verified, "verified")
            return web.json_response({"valid": True, "status": "verified"})
        current = await store.otp_codes.find_one({"_id": record["_id"]}) or record
        return _refused(current["status"], current["attemptsLeft"])
    spent = await store.otp_codes.find_one_and_update(
        {"_id": record["_id"], "status": "pending", "attemptsLeft": {"$gt": 0}},
        {"$inc": {"attemptsLeft": -1}},
        return_document=ReturnDocument.AFTER,
    )
    if spent is None:
        current = await store.otp_codes.find_one({"_id": record["_id"]}) or record
        return _refused(current["status"], current["attemptsLeft"])
    if spent["attemptsLeft"] <= 0:
        await block_number(request, spent, now)
        return _refused("blocked", 0)
    return _refused("pending", spent["attemptsLeft"])


@API.get(
    "/otp/templates",
    summary="The synced AUTHENTICATION templates that can carry codes on cloud_api instances",
    tag="otp",
    response=OtpTemplates,
    errors=(401,),
    scope="otp:read",
)
async def list_otp_templates(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    found = request.app[STORE].templates.find(
        {"tenantId": caller.tenant_id, "category": AUTHENTICATION, "deleted": False}
    )
    templates = [
        {
            "id": t["_id"],
            "instanceName": t["instanceName"],
            "name": t["name"],
            "language": t["language"],
            "status": t["status"],
            "category": t["category"],
        }
        async for t in found.sort([("name", 1), ("_id", 1)])
    ]
    return web.json_response({"data": templates})


@API.get(
    "/otp/{id}",
    summary="An OTP's status (following its message's receipts until verified), without the code",
    tag="otp",
    response=OtpView,
    errors=(401, 404),
    scope="otp:read",
)
async def get_otp(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    record = await _own_otp(store, caller, request.match_info["id"])
    record = await expire_if_due(request.app[STORE], request.app[BROKER], record, utcnow())
    return web.json_response(
        {
            "id": record["_id"],
            "instanceName": record["instanceName"],
            "to": record["to"],
            "status": await _status(store, record),
            "attemptsLeft": record["attemptsLeft"],
            "resendsLeft": record["resendsLeft"],
            "createdAt": iso_utc(record["createdAt"]),
            "expiresAt": iso_utc(record["expiresAt"]),
            "verifiedAt": iso_utc(record.get("verifiedAt")),
            "externalId": record.get("externalId"),
            "messageIds": record["messageIds"],
        }
    )


async def _status(store: Store, record: Document) -> str:
    """The stored outcome once there is one, else what the latest send's message reached."""
    if record["status"] != "pending" or not record["messageIds"]:
        return str(record["status"])
    message = await store.messages.find_one(
        {"_id": record["messageIds"][-1]}, {"status": 1, "deliveredAt": 1, "readAt": 1}
    )
    if message is None:
        return "pending"
    if message.get("readAt"):
        return "read"
    if message.get("deliveredAt"):
        return "delivered"
    shown = lifecycle.public(message["status"])
    return shown if shown in ("sent", "failed") else "pending"


def _count(store: Store, record: Document, what: usage.Counted) -> None:
    """Count a code's send or verification in its tenant's usage."""
    usage.count(store, record["tenantId"], record["instanceName"], None, what, utcnow())


def _refused(status: str, attempts_left: int) -> web.Response:
    return web.json_response(
        {"valid": False, "status": status, "attemptsLeft": attempts_left}, status=422
    )


def _hash(request: web.Request, otp_id: str, code: str) -> str:
    return otp.code_hash(otp.hash_keys(request.app[KEYRING])[0], otp_id, code)


async def _own_otp(store: Store, caller: Caller, otp_id: str) -> Document:
    """One of the caller's OTPs; another tenant's id reads as not found."""
    record = await store.otp_codes.find_one({"_id": otp_id, "tenantId": caller.tenant_id})
    if record is None:
        raise NotFound("OTP not found")
    return record


async def _otp_to_verify(store: Store, caller: Caller, body: OtpVerify) -> Document:
    """The OTP a verify names: by id, or the latest sent to the number from the instance."""
    if body.id is not None or body.instanceName is None:
        return await _own_otp(store, caller, body.id or "")
    await own_instance(store, caller, body.instanceName)
    record = await store.otp_codes.find_one(
        {"tenantId": caller.tenant_id, "instanceName": body.instanceName, "to": body.to},
        sort=[("createdAt", -1), ("_id", -1)],
    )
    if record is None:
        raise NotFound(f"No code was sent to {body.to} from {body.instanceName}")
    return record
