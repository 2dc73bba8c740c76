"""Provider callbacks made into gateway state and events (the `Callbacks` of every provider)."""

from datetime import datetime
from typing import Any

import structlog
from pymongo import ReturnDocument

from lanegate.broker import Broker
from lanegate.events import (
    InstancePaused,
    InstanceState,
    InstanceStateName,
    MessageReceived,
    MessageStatus,
    PauseScope,
    TemplateSyncRequested,
    status_event_id,
    utcnow,
)
from lanegate.store import Document, Store
from provider_sender.metrics import MESSAGE_STATUS

log = structlog.get_logger(__name__)

RECEIPT_FIELD = {"delivered": "deliveredAt", "read": "readAt"}


class GatewayCallbacks:
    """Records what a provider reports in the store, then publishes it as an event."""

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
    ) -> None:
        changes: dict[str, Any] = {"state": state, "stateChangedAt": utcnow()}
        if state == "open":
            changes |= {"phoneNumber": phone_number, "connectedAt": utcnow(), "lastError": None}
            changes |= {"device": device, "platform": "WHATSAPP"}
            changes["firstConnectedAt"] = instance.get("firstConnectedAt") or utcnow()
        await self._store.instances.update_one({"_id": instance["_id"]}, {"$set": changes})
        if state == "open":
            # Connecting again lifts a provider's pause, never the tenant's (the scheduler does
            # the same on this event).
            await self._store.instances.update_one(
                {"_id": instance["_id"], "paused.by": {"$ne": "tenant"}}, {"$set": {"paused": None}}
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
            {"_id": instance["_id"]}, {"$set": {"lastError": error}}
        )
        await self.state(instance, "close", reason=f"{code}: {message}")

    async def receipt(
        self, provider_message_id: str, status: str, *, errors: list[dict[str, Any]] | None = None
    ) -> None:
        if status == "failed":
            await self._failed(provider_message_id, errors or [])
            return
        if status == "sent":
            return  # recorded when the provider took the message
        field = RECEIPT_FIELD.get(status)
        if field is None:
            log.warning("unknown receipt status", status=status)
            return
        message = await self._store.messages.find_one_and_update(
            {"providerMessageId": provider_message_id, field: None},
            {"$set": {field: utcnow(), "receipt": status}},
            return_document=ReturnDocument.AFTER,
        )
        if message is None:
            return  # an unknown id or a repeated receipt: nothing new to tell
        MESSAGE_STATUS.labels(status, message["provider"]).inc()
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
        # The contact wrote: a 24-hour customer-service window opens (or restarts) now.
        await self._store.conversation_windows.update_one(
            {"instanceName": instance["_id"], "contact": sender},
            {"$set": {"tenantId": instance["tenantId"], "lastInboundAt": utcnow()}},
            upsert=True,
        )
        await self._broker.publish(
            MessageReceived(
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
        )

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
                {
                    "_id": instance["_id"],
                    "$or": [{"paused.by": {"$ne": "tenant"}}, tenant_pause_over],
                },
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
        log.warning("instance paused", instance=instance["_id"], reason=reason, scope=scope)

    async def _failed(self, provider_message_id: str, errors: list[dict[str, Any]]) -> None:
        """The provider took the message, then could not deliver it."""
        first = errors[0] if errors else {}
        error = {
            "code": str(first.get("code", "failed")),
            "message": str(first.get("title") or first.get("message") or "Not delivered"),
            "errors": errors,
        }
        message = await self._store.messages.find_one_and_update(
            {"providerMessageId": provider_message_id, "status": "sent"},
            {"$set": {"status": "failed", "error": error, "failedAt": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )
        if message is None:
            return
        MESSAGE_STATUS.labels("failed", message["provider"]).inc()
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
