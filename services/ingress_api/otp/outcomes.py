"""An OTP's outcomes told to its webhook, and codes past their expiry moved to `expired` as it
passes (not only when someone next asks about them)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import structlog
from aiohttp import web
from pymongo import ReturnDocument

from lanegate.broker import Broker
from lanegate.events import OtpOutcome, otp_finished, utcnow
from lanegate.service import BROKER, STORE
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)

# How often expired codes are looked for; the webhook may come this much after the expiry.
EXPIRY_SWEEP_SECONDS = 2.0
# Codes expired per pass (a backlog drains over the next passes).
EXPIRY_SWEEP_BATCH = 500


async def tell(broker: Broker, record: Document, status: OtpOutcome) -> None:
    """Publish the OTP's outcome for its webhook; the outcome stands when the broker is down
    (the answer to a verify must not say otherwise)."""
    try:
        await broker.publish(otp_finished(record, status))
    except Exception as e:
        log.warning("otp outcome not published", otp_id=record["_id"], error=repr(e))


async def expire_if_due(store: Store, broker: Broker, record: Document, now: datetime) -> Document:
    """The record, moved `pending -> expired` (and told, once) when past its expiry."""
    if record["status"] != "pending" or record["expiresAt"] > now:
        return record
    expired = await store.otp_codes.find_one_and_update(
        {"_id": record["_id"], "status": "pending", "expiresAt": {"$lte": now}},
        {"$set": {"status": "expired"}},
        return_document=ReturnDocument.AFTER,
    )
    if expired is not None:
        await tell(broker, expired, "expired")
        return expired
    return await store.otp_codes.find_one({"_id": record["_id"]}) or record


async def expire_due_codes(store: Store, broker: Broker) -> int:
    """Expire the codes whose time passed; how many this pass found."""
    now = utcnow()
    due = await store.otp_codes.find(
        {"status": "pending", "expiresAt": {"$lte": now}}, limit=EXPIRY_SWEEP_BATCH
    ).to_list(None)
    for record in due:
        await expire_if_due(store, broker, record, now)
    return len(due)


async def expiring_codes(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: expire due codes every few seconds while the service runs (replicas racing
    over one code expire it once: the move is conditional)."""

    async def loop() -> None:
        while True:
            try:
                await expire_due_codes(app[STORE], app[BROKER])
            except Exception as e:
                log.warning("otp expiry pass failed", error=repr(e))
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
