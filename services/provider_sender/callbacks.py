"""Provider callbacks made into gateway state and events (the `Callbacks` of every provider)."""

import contextlib
from datetime import datetime, timedelta
from typing import Any

import structlog
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from lanegate import health, health_guard, usage
from lanegate.broker import Broker
from lanegate.conversations import record_inbound
from lanegate.events import (
    InstancePaused,
    InstanceState,
    InstanceStateName,
    MessageReceived,
    MessageStatus,
    PauseScope,
    TemplateSyncRequested,
    received_event_id,
    status_event_id,
    utcnow,
)
from lanegate.lifecycle import mark_undelivered
from lanegate.providers.cloud_api import pause_of
from lanegate.store import Document, Store
from provider_sender.metrics import MESSAGE_STATUS

log = structlog.get_logger(__name__)

RECEIPT_FIELD = {"delivered": "deliveredAt", "read": "readAt"}
# The receipts a send can get, in the order they are applied when kept for it.
RECEIPT_ORDER = ("delivered", "read", "failed")
# How long an inbound message's id is remembered, to take a provider's redelivery as seen:
# longer than any provider retries a callback (Meta: up to 7 days).
INBOUND_SEEN_FOR = timedelta(days=8)
# How long a receipt that came before its send was recorded is kept for it: a send recorded
# later than this (a crashed sender's, settled after its claim timed out) misses it.
EARLY_RECEIPT_KEPT = timedelta(hours=1)


class GatewayCallbacks:
    """Records what a provider reports in the store, then publishes it as an event.

    Every write is scoped to the instance the report came from (its name and its
    tenant), so a callback on one instance can never touch another's messages,
    windows or state, and each report takes effect once however often it is replayed.
    """

    def __init__(self, store: Store, broker: Broker) -> None:
        self._store = store
        self._broker = broker

    async def state(
        self,
        instance: Document,
        state: InstanceStateName,
        *,
        phone_number: str | None = None,
        device: str | None = None,
        reason: str | None = None,
        reported_at: datetime | None = None,
    ) -> None:
        changes: dict[str, Any] = {"state": state, "stateChangedAt": utcnow()}
        if state == "open":
            changes |= {"phoneNumber": phone_number, "connectedAt": utcnow(), "lastError": None}
            changes |= {"device": device, "platform": "WHATSAPP"}
            changes["firstConnectedAt"] = instance.get("firstConnectedAt") or utcnow()
        where = self._scope(instance)
        if reported_at is not None:
            # A report older than the one recorded is a late or replayed callback: ignored.
            where |= _not_older(reported_at)
        # A state set without a provider's time (a logout, the sandbox) is as of now.
        changes["stateReportedAt"] = reported_at or changes["stateChangedAt"]
        result = await self._store.instances.update_one(where, {"$set": changes})
        if result.matched_count == 0:
            log.info("stale state report ignored", instance=instance["_id"], state=state)
            return
        if state == "open":
            # Connecting again lifts a provider's pause, never the tenant's (the scheduler does
            # the same on this event).
            await self._store.instances.update_one(
                self._scope(instance) | {"paused.by": {"$ne": "tenant"}}, {"$set": {"paused": None}}
            )
        await self._broker.publish(
            InstanceState(
                tenantId=instance["tenantId"],
                instanceName=instance["_id"],
                state=state,
                reason=reason,
                phoneNumber=phone_number,
            )
        )
        if state == "open" and instance.get("provider") == "cloud_api":
            # Credentials Meta accepts can list the number's templates: have them now.
            await self._broker.publish(
                TemplateSyncRequested(tenantId=instance["tenantId"], instanceName=instance["_id"])
            )
        log.info("instance state", instance=instance["_id"], state=state, reason=reason)

    async def refused(self, instance: Document, code: str, message: str) -> None:
        """The provider refused to open the session (bad credentials, unknown number): the
        instance is `close` with the reason kept as its `lastError`."""
        error = {"code": code, "message": message, "at": utcnow()}
        await self._store.instances.update_one(
            self._scope(instance), {"$set": {"lastError": error}}
        )
        await self.state(instance, "close", reason=f"{code}: {message}")

    async def state_seen(self, instance: Document, reported_at: datetime) -> bool:
        """Record the provider's time of a report that repeats the current state; False when
        a newer report was recorded already."""
        result = await self._store.instances.update_one(
            self._scope(instance) | _not_older(reported_at),
            {"$set": {"stateReportedAt": reported_at}},
        )
        return result.matched_count == 1

    async def receipt(
        self,
        instance: Document,
        provider_message_id: str,
        status: str,
        *,
        errors: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Apply a receipt to the message this instance sent; False when it changed nothing
        (an unknown id, or a receipt applied before).

        A receipt can come before the send it is about is recorded (the provider reports at
        once, the sender's write is still under way): it is kept for that send to apply
        (`apply_early_receipts`), then tried once more. Of the send's write and this keeping,
        whichever comes second sees the other, so the receipt is applied, and only once. A
        receipt for a recorded send that changed nothing (a replay) is not kept."""
        if status == "sent":
            return False  # recorded when the provider took the message
        if status not in RECEIPT_ORDER:
            log.warning("unknown receipt status", status=status)
            return False
        if await self._apply_receipt(instance, provider_message_id, status, errors):
            return True
        recorded = await self._store.messages.find_one(
            self._sent_from(instance, provider_message_id), {"_id": 1}
        )
        if recorded is None:
            now = utcnow()
            # DuplicateKeyError: the same receipt, kept at once by another delivery of it.
            with contextlib.suppress(DuplicateKeyError):
                await self._store.early_receipts.update_one(
                    self._by_provider_id(instance, provider_message_id) | {"status": status},
                    {
                        "$setOnInsert": {
                            "tenantId": instance["tenantId"],
                            "errors": errors,
                            "expiresAt": now + EARLY_RECEIPT_KEPT,
                        }
                    },
                    upsert=True,
                )
        # Recorded meanwhile, or kept: one more try either way.
        return await self._apply_receipt(instance, provider_message_id, status, errors)

    async def apply_early_receipts(self, instance: Document, provider_message_id: str) -> None:
        """Apply the receipts that came before this instance's send `provider_message_id`
        was recorded (called once it is, and again by a redelivered dispatch), delivered
        before read."""
        where = self._by_provider_id(instance, provider_message_id)
        kept = await self._store.early_receipts.find(where).to_list(None)
        for receipt in sorted(kept, key=lambda r: RECEIPT_ORDER.index(r["status"])):
            await self._apply_receipt(
                instance, provider_message_id, receipt["status"], receipt.get("errors")
            )
        if kept:
            await self._store.early_receipts.delete_many({"_id": {"$in": [r["_id"] for r in kept]}})

    async def _apply_receipt(
        self,
        instance: Document,
        provider_message_id: str,
        status: str,
        errors: list[dict[str, Any]] | None,
    ) -> bool:
        """Apply a receipt to the recorded send; False when there is none it changes."""
        if status == "failed":
            return await self._failed(instance, provider_message_id, errors or [])
        field = RECEIPT_FIELD[status]
        message = await self._store.messages.find_one_and_update(
            self._sent_from(instance, provider_message_id) | {field: None},
            {"$set": {field: utcnow(), "receipt": status}},
            return_document=ReturnDocument.AFTER,
        )
        if message is None:
            return False  # an unknown id or a repeated receipt: nothing new to tell
        MESSAGE_STATUS.labels(status, message["provider"]).inc()
        counted = usage.Counted.DELIVERED if status == "delivered" else usage.Counted.READ
        usage.count_message(self._store, message, counted, message[field])
        await self._broker.publish(
            MessageStatus(
                id=status_event_id(message["_id"], status),
                tenantId=message["tenantId"],
                instanceName=message["instanceName"],
                messageId=message["_id"],
                status="delivered" if status == "delivered" else "read",
                to=message["to"],
                lane=message["lane"],
                providerMessageId=provider_message_id,
            )
        )
        return True

    async def inbound(
        self,
        instance: Document,
        *,
        sender: str,
        push_name: str | None,
        text: str | None,
        provider_message_id: str,
        sent_at: int,
        message_type: str = "conversation",
        content: dict[str, Any] | None = None,
    ) -> None:
        seen_at = await self._first_seen(instance, provider_message_id)
        if seen_at is None:
            log.info("replayed inbound message ignored", instance=instance["_id"])
            return
        # The contact wrote: a 24-hour customer-service window opens (or restarts) then.
        await self._store.conversation_windows.update_one(
            {"instanceName": instance["_id"], "tenantId": instance["tenantId"], "contact": sender},
            {"$set": {"lastInboundAt": seen_at}},
            upsert=True,
        )
        received = MessageReceived(
            id=received_event_id(instance["_id"], provider_message_id),
            tenantId=instance["tenantId"],
            instanceName=instance["_id"],
            sender=sender,
            pushName=push_name,
            messageType=message_type,
            text=text,
            providerMessageId=provider_message_id,
            sentAt=sent_at,
            content=content,
        )
        if await record_inbound(self._store, received, instance.get("phoneNumber"), seen_at):
            await health_guard.judge(self._store, self._broker, instance["_id"], seen_at)
        await self._broker.publish(received)
        await self._store.inbound_seen.update_one(
            self._by_provider_id(instance, provider_message_id), {"$set": {"told": True}}
        )

    async def _first_seen(self, instance: Document, provider_message_id: str) -> datetime | None:
        """When an inbound message was first seen; None when it was seen and told already."""
        now = utcnow()
        seen = self._by_provider_id(instance, provider_message_id)
        try:
            await self._store.inbound_seen.insert_one(
                seen
                | {"tenantId": instance["tenantId"], "seenAt": now, "told": False}
                | {"expiresAt": now + INBOUND_SEEN_FOR}
            )
            return now
        except DuplicateKeyError:
            record = await self._store.inbound_seen.find_one(seen)
        if record is None or record.get("told"):
            return None
        # An earlier try stopped before telling the tenant (a crash): finish it, as of then.
        seen_at: datetime = record["seenAt"]
        return seen_at

    async def paused(
        self,
        instance: Document,
        reason: str,
        *,
        until: datetime | None = None,
        scope: PauseScope = "instance",
    ) -> None:
        now = utcnow()
        if scope == "instance":
            # A tenant's pause still on stays: its resume lifts this one too.
            tenant_pause_over = {"paused.until": {"$lte": now}}
            await self._store.instances.update_one(
                self._scope(instance)
                | {"$or": [{"paused.by": {"$ne": "tenant"}}, tenant_pause_over]},
                {
                    "$set": {
                        "paused": {"reason": reason, "since": now, "until": until, "by": "provider"}
                    }
                },
            )
        await self._broker.publish(
            InstancePaused(
                occurredAt=now,
                tenantId=instance["tenantId"],
                instanceName=instance["_id"],
                reason=reason,
                until=until,
                scope=scope,
            )
        )
        if scope == "instance":  # the provider flagged the number itself (spam, policy)
            await health_guard.counted(
                self._store,
                self._broker,
                instance["tenantId"],
                instance["_id"],
                health.Counted.REPORTS,
                now,
            )
        log.warning("instance paused", instance=instance["_id"], reason=reason, scope=scope)

    async def _failed(
        self, instance: Document, provider_message_id: str, errors: list[dict[str, Any]]
    ) -> bool:
        """The provider took the message, then could not deliver it; a failure whose errors
        call for it pauses the number, once, whenever the failure is applied."""
        first = errors[0] if errors else {}
        error = {
            "code": str(first.get("code", "failed")),
            "message": str(first.get("title") or first.get("message") or "Not delivered"),
            "errors": errors,
        }
        message = await mark_undelivered(
            self._store, self._sent_from(instance, provider_message_id), error, utcnow()
        )
        if message is None:
            return False
        MESSAGE_STATUS.labels("failed", message["provider"]).inc()
        usage.count_message(self._store, message, usage.Counted.FAILED, message["failedAt"])
        # Taken, then never delivered: how WhatsApp shows a recipient who blocked the number.
        await health_guard.counted(
            self._store,
            self._broker,
            message["tenantId"],
            message["instanceName"],
            health.Counted.BLOCKS,
            utcnow(),
        )
        await self._broker.publish(
            MessageStatus(
                id=status_event_id(message["_id"], "failed"),
                tenantId=message["tenantId"],
                instanceName=message["instanceName"],
                messageId=message["_id"],
                status="failed",
                to=message["to"],
                lane=message["lane"],
                providerMessageId=provider_message_id,
                error=error,
            )
        )
        # Applied once, so a replay pauses nothing.
        pause = pause_of(errors)
        if pause is not None:
            reason, until = pause
            await self.paused(instance, reason, until=until)
        return True

    @staticmethod
    def _scope(instance: Document) -> Document:
        return {"_id": instance["_id"], "tenantId": instance["tenantId"]}

    @staticmethod
    def _sent_from(instance: Document, provider_message_id: str) -> Document:
        """The filter of a message this instance sent, by the provider's id of it."""
        return {
            "providerMessageId": provider_message_id,
            "instanceName": instance["_id"],
            "tenantId": instance["tenantId"],
        }

    @staticmethod
    def _by_provider_id(instance: Document, provider_message_id: str) -> Document:
        """The filter of what is kept by this instance and the provider's id (an inbound
        message seen, receipts kept for a send)."""
        return {"instanceName": instance["_id"], "providerMessageId": provider_message_id}


def _not_older(reported_at: datetime) -> Document:
    """Matches an instance whose recorded provider report is not newer than `reported_at`."""
    return {
        "$or": [
            {"stateReportedAt": {"$exists": False}},
            {"stateReportedAt": {"$lte": reported_at}},
        ]
    }
