"""An OTP's limits: attempts per code, resends, sends per number and hour, and blocked
numbers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import structlog
from aiohttp import web

from ingress_api.auth import Caller
from ingress_api.otp.outcomes import tell
from lanegate.errors import OtpLiveCodesExceeded, OtpSendsExceeded, RateLimited
from lanegate.service import BROKER, STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

log = structlog.get_logger(__name__)

# Wrong codes a code takes before it is blocked.
MAX_ATTEMPTS = 5
# After a blocked code, the number takes no code for this long (a new code does not reset it).
NUMBER_BLOCK = timedelta(minutes=15)
MAX_RESENDS = 3
RESEND_GAP = timedelta(seconds=30)
# Sends (first and resends) per tenant and number in any hour, unless the tenant's plan says.
SENDS_PER_HOUR = 5
HOUR = timedelta(hours=1)
# A finished code is kept this long for status reads, then purged.
KEPT_AFTER = timedelta(hours=1)


def seconds_until(at: datetime, now: datetime) -> str:
    """A `Retry-After` value: whole seconds until `at`, at least 1."""
    return str(max(1, int((at - now).total_seconds()) + 1))


async def block_number(request: web.Request, spent: Document, now: datetime) -> None:
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


async def number_blocked(store: Store, caller: Caller, to: str, now: datetime) -> datetime | None:
    """Until when a blocked code keeps this number from taking codes, if it does."""
    blocked = await store.otp_codes.find_one(
        {"tenantId": caller.tenant_id, "to": to, "blockedUntil": {"$gt": now}},
        {"blockedUntil": 1},
        sort=[("blockedUntil", -1)],
    )
    return blocked["blockedUntil"] if blocked else None


async def refuse_blocked_number(store: Store, caller: Caller, to: str, now: datetime) -> None:
    until = await number_blocked(store, caller, to, now)
    if until is not None:
        raise RateLimited(
            f"Too many wrong codes for {to}; it takes no code until {iso_utc(until)}",
            headers={"Retry-After": seconds_until(until, now)},
        )


@asynccontextmanager
async def hourly_send(store: Store, caller: Caller, to: str, now: datetime) -> AsyncIterator[None]:
    """Hold one of the number's sends of the last hour for the block's send, giving it back
    when the block fails, so a refused send costs the number nothing."""
    await take_hourly_send(store, caller, to, now)
    try:
        yield
    except BaseException:
        await store.otp_number_sends.update_one(
            {"_id": f"{caller.tenant_id}:{to}"}, {"$pull": {"sends": now}}
        )
        raise


async def take_hourly_send(store: Store, caller: Caller, to: str, now: datetime) -> None:
    """Take one of the number's sends in the last hour (`SENDS_PER_HOUR`, or the tenant's
    limit), or 429 when all are taken; one conditional update, so two sends at once cannot both
    take the last one."""
    # Right after a tenant's limit is lowered, the oldest held send can stand before sends the
    # new limit counts: one send more than the new limit may pass, once per number.
    per_hour = caller.otp_sends_per_hour or SENDS_PER_HOUR
    key = {"_id": f"{caller.tenant_id}:{to}"}
    await store.otp_number_sends.update_one(key, {"$setOnInsert": {"sends": []}}, upsert=True)
    # `sends` holds the number's latest sends, oldest first: a send is free while fewer are
    # held or the oldest is more than an hour old.
    taken = await store.otp_number_sends.find_one_and_update(
        key
        | {
            "$or": [
                {f"sends.{per_hour - 1}": {"$exists": False}},
                {"sends.0": {"$lte": now - HOUR}},
            ]
        },
        {
            "$push": {"sends": {"$each": [now], "$slice": -per_hour}},
            "$set": {"purgeAt": now + HOUR},
        },
    )
    if taken is None:
        held = await store.otp_number_sends.find_one(key) or {"sends": [now]}
        raise OtpSendsExceeded(
            f"At most {per_hour} codes an hour to {to}",
            headers={"Retry-After": seconds_until(held["sends"][0] + HOUR, now)},
        )


async def live_codes(store: Store, tenant_id: str, now: datetime) -> int:
    """How many of the tenant's codes wait to be verified."""
    return await store.otp_codes.count_documents(
        {"tenantId": tenant_id, "status": "pending", "expiresAt": {"$gt": now}}
    )


@asynccontextmanager
async def live_code(store: Store, record: Document, cap: int, now: datetime) -> AsyncIterator[None]:
    """Store a new code for the block's send, as one of the tenant's at most `cap` codes
    waiting at once (429 beyond), and remove it when the block fails. Counted after the
    insert, so sends at once cannot all slip under the cap."""
    await store.otp_codes.insert_one(record)
    try:
        if await live_codes(store, record["tenantId"], now) > cap:
            raise OtpLiveCodesExceeded(
                f"{cap} codes are live for this tenant; wait for some to be verified or expire",
                headers={"Retry-After": "60"},
            )
        yield
    except BaseException:
        await store.otp_codes.delete_one({"_id": record["_id"]})
        raise
