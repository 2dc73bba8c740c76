"""One-time codes over WhatsApp: send, resend, verify, read, and the templates that can carry
them. Codes are stored only as keyed hashes; the message carrying one shows the mask."""

from datetime import datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from pymongo import ReturnDocument

from ingress_api.accept.accepting import MessageToAccept, accept_one
from ingress_api.auth import Caller, authenticate
from ingress_api.countries import send_context
from ingress_api.otp_outcomes import expire_if_due, tell
from ingress_api.registry import API
from ingress_api.requests import own_instance, read_object, validate
from ingress_api.schemas.messages import SendCommon
from ingress_api.schemas.otp import (
    OtpSend,
    OtpSent,
    OtpTemplates,
    OtpVerified,
    OtpVerify,
    OtpView,
)
from lanegate import lifecycle, otp
from lanegate.errors import InvalidInput, NotFound, RateLimited
from lanegate.events import new_id, utcnow
from lanegate.service import BROKER, KEYRING, SETTINGS, STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

log = structlog.get_logger(__name__)

# Wrong codes a code takes before it is blocked.
MAX_ATTEMPTS = 5
# After a blocked code, the number takes no code for this long (a new code does not reset it).
NUMBER_BLOCK = timedelta(minutes=15)
MAX_RESENDS = 3
RESEND_GAP = timedelta(seconds=30)
# Sends (first and resends) per tenant and number in any hour.
SENDS_PER_HOUR = 5
HOUR = timedelta(hours=1)
# A finished code is kept this long for status reads and the hourly count, then purged.
KEPT_AFTER = timedelta(hours=1)
DEFAULT_TEXT = f"Your verification code is {otp.PLACEHOLDER}. Do not share it with anyone."
AUTHENTICATION = "AUTHENTICATION"
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
    content_of = await _carrier(store, instance, body)
    await _refuse_blocked_number(store, caller, body.to, now)
    await _refuse_over_hourly_sends(store, caller, body.to, now)
    live = await store.otp_codes.count_documents(
        {"tenantId": caller.tenant_id, "status": "pending", "expiresAt": {"$gt": now}}
    )
    cap = request.app[SETTINGS].otp_max_live_codes
    if live >= cap:
        raise RateLimited(
            f"{cap} codes are live for this tenant; wait for some to be verified or expire",
            headers={"Retry-After": "60"},
        )
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
    # The message goes first: a send refused (a closed window, an inactive contact) leaves
    # no code behind.
    message_id = await _send_code(request, caller, record, code)
    await store.otp_codes.insert_one(record | {"messageIds": [message_id]})
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
            headers={"Retry-After": _seconds_until(record["expiresAt"], now)},
        )
    last = record["sends"][-1]
    if now < last + RESEND_GAP:
        raise RateLimited(
            f"Resend at most every {int(RESEND_GAP.total_seconds())} seconds",
            headers={"Retry-After": _seconds_until(last + RESEND_GAP, now)},
        )
    await _refuse_blocked_number(store, caller, record["to"], now)
    await _refuse_over_hourly_sends(store, caller, record["to"], now)
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
    message_id = await _send_code(request, caller, renewed, code)
    await store.otp_codes.update_one({"_id": record["_id"]}, {"$push": {"messageIds": message_id}})
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
        await _block_number(request, spent, now)
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


def _refused(status: str, attempts_left: int) -> web.Response:
    return web.json_response(
        {"valid": False, "status": status, "attemptsLeft": attempts_left}, status=422
    )


def _hash(request: web.Request, otp_id: str, code: str) -> str:
    return otp.code_hash(otp.hash_keys(request.app[KEYRING])[0], otp_id, code)


def _seconds_until(at: datetime, now: datetime) -> str:
    return str(max(1, int((at - now).total_seconds()) + 1))


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


async def _block_number(request: web.Request, spent: Document, now: datetime) -> None:
    """Block the code that ran out of attempts and every other pending code of its number
    (each told once), so a verify needs to read no more than its own code."""
    store = request.app[STORE]
    until = now + NUMBER_BLOCK
    pending = store.otp_codes.find(
        {"tenantId": spent["tenantId"], "to": spent["to"], "status": "pending"}
    )
    async for record in pending:
        blocked = await store.otp_codes.update_one(
            {"_id": record["_id"], "status": "pending"},
            {
                "$set": {
                    "status": "blocked",
                    "blockedUntil": until,
                    "purgeAt": max(record["purgeAt"], until + KEPT_AFTER),
                }
            },
        )
        if blocked.modified_count:
            log.info("otp blocked", otp_id=record["_id"])
            await tell(request.app[BROKER], record, "blocked")


async def _number_blocked(store: Store, caller: Caller, to: str, now: datetime) -> datetime | None:
    """Until when a blocked code keeps this number from taking codes, if it does."""
    blocked = await store.otp_codes.find_one(
        {"tenantId": caller.tenant_id, "to": to, "blockedUntil": {"$gt": now}},
        {"blockedUntil": 1},
        sort=[("blockedUntil", -1)],
    )
    return blocked["blockedUntil"] if blocked else None


async def _refuse_blocked_number(store: Store, caller: Caller, to: str, now: datetime) -> None:
    until = await _number_blocked(store, caller, to, now)
    if until is not None:
        raise RateLimited(
            f"Too many wrong codes for {to}; it takes no code until {iso_utc(until)}",
            headers={"Retry-After": _seconds_until(until, now)},
        )


async def _refuse_over_hourly_sends(store: Store, caller: Caller, to: str, now: datetime) -> None:
    """429 once the number had `SENDS_PER_HOUR` sends in the last hour."""
    since = now - HOUR
    recent = [
        sent
        async for record in store.otp_codes.find(
            {"tenantId": caller.tenant_id, "to": to, "sends": {"$gt": since}}, {"sends": 1}
        )
        for sent in record["sends"]
        if sent > since
    ]
    if len(recent) >= SENDS_PER_HOUR:
        oldest = sorted(recent)[len(recent) - SENDS_PER_HOUR]
        raise RateLimited(
            f"At most {SENDS_PER_HOUR} codes an hour to {to}",
            headers={"Retry-After": _seconds_until(oldest + HOUR, now)},
        )


async def _carrier(store: Store, instance: Document, body: OtpSend) -> dict[str, Any]:
    """How the code goes: an AUTHENTICATION template on cloud_api, else a text (400 when the
    body does not fit the instance)."""
    if instance["provider"] != "cloud_api":
        if body.template is not None:
            raise InvalidInput(
                [(["template"], f"A {instance['provider']} instance sends codes as text")]
            )
        return {"kind": "text", "text": otp.masked_text(body.text or DEFAULT_TEXT)}
    if body.template is None:
        raise InvalidInput(
            [(["template"], "A cloud_api instance sends codes with an AUTHENTICATION template")]
        )
    template = await store.templates.find_one(
        {
            "tenantId": instance["tenantId"],
            "instanceName": instance["_id"],
            "name": body.template.name,
            "language": body.template.language,
            "deleted": False,
        }
    )
    if template is None:
        raise InvalidInput(
            [
                (
                    ["template", "name"],
                    f"No template {body.template.name} in "
                    f"{body.template.language} on {instance['_id']}: sync templates first",
                )
            ]
        )
    if template.get("category") != AUTHENTICATION:
        raise InvalidInput(
            [
                (
                    ["template", "name"],
                    f"Template {template['name']} is of category "
                    f"{template.get('category')}, not {AUTHENTICATION}",
                )
            ]
        )
    if template["status"] != "APPROVED":
        raise InvalidInput(
            [
                (
                    ["template", "name"],
                    f"Template {template['name']} is {template['status']}; "
                    "only APPROVED templates can be sent",
                )
            ]
        )
    return {
        "kind": "template",
        "templateId": template["_id"],
        "name": template["name"],
        "language": template["language"],
        # Meta's authentication templates take the code as the body parameter and again as
        # the copy-code button's URL parameter.
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": otp.MASK}]},
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": otp.MASK}],
            },
        ],
        "variables": [otp.MASK],
    }


async def _send_code(request: web.Request, caller: Caller, record: Document, code: str) -> str:
    """Queue the message carrying `code` (sealed in it, masked everywhere it shows) on the
    urgent lane at the top priority; its id."""
    carrier = dict(record["carrier"])
    kind = carrier.pop("kind")
    carrier[otp.SEALED_CODE] = request.app[KEYRING].encrypt(code)
    body = SendCommon.model_validate(
        {
            "instanceName": record["instanceName"],
            "to": record["to"],
            "lane": "urgent",
            "priority": 10,
            "messageType": "TRANSACTIONAL",
            "validUntil": record["expiresAt"],
        },
        context=await send_context(request, caller, record["instanceName"]),
    )
    answer, _ = await accept_one(request, caller, MessageToAccept(body, kind, carrier))
    return str(answer["id"])
