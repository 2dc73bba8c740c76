"""Gateway events as the tenant sees them: the webhook envelope and its data shapes."""

from typing import Any

from pydantic import BaseModel

from lanegate.events import (
    AnyEvent,
    InstanceHealth,
    InstancePaused,
    InstanceResumed,
    InstanceState,
    MessageExpired,
    MessageReceived,
    MessageStatus,
    OtpFinished,
    TemplateStatusChanged,
)
from lanegate.timestamps import iso_utc
from lanegate.webhook_payloads import (
    WEBHOOKS,
    InstanceEventData,
    InstanceHealthData,
    InstancePausedData,
    MessageExpiredData,
    MessageReceivedData,
    MessageStatusData,
    OtpData,
    TemplateStatusData,
)

STATE_EVENTS = {"open": "instance.connected", "close": "instance.disconnected"}


def envelope(event: AnyEvent) -> dict[str, Any] | None:
    """The webhook body for an event, built from its documented model, or None for events
    tenants are not sent."""
    found = _data(event)
    if found is None:
        return None
    name, data = found
    body = WEBHOOKS[name](
        event=name, instanceName=event.instanceName, data=data, timestamp=iso_utc(event.occurredAt)
    )
    # Unset: optional details a body leaves out (a text message's `content`), not nulls.
    return body.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _data(event: AnyEvent) -> tuple[str, BaseModel | dict[str, Any]] | None:
    if isinstance(event, InstanceState):
        if event.state not in STATE_EVENTS:
            return None
        return STATE_EVENTS[event.state], InstanceEventData(
            state=event.state, reason=event.reason, phoneNumber=event.phoneNumber
        )
    if isinstance(event, MessageStatus):
        return "message.status", MessageStatusData(
            id=event.messageId,
            status=event.status,
            to=event.to,
            lane=event.lane,
            providerMessageId=event.providerMessageId,
            error=event.error,
        )
    if isinstance(event, MessageReceived):
        details = {"content": event.content} if event.content is not None else {}
        return "message.received", MessageReceivedData(
            sender=event.sender,
            pushName=event.pushName,
            messageType=event.messageType,
            text=event.text,
            messageId=event.providerMessageId,
            timestamp=event.sentAt,
            **details,
        )
    if isinstance(event, InstancePaused):
        return "instance.paused", InstancePausedData(
            reason=event.reason, until=iso_utc(event.until), by=event.by
        )
    if isinstance(event, InstanceResumed):
        return "instance.resumed", {}
    if isinstance(event, MessageExpired):
        return "message.expired", MessageExpiredData(
            id=event.messageId,
            status="expired",
            to=event.to,
            lane=event.lane,
            validUntil=iso_utc(event.validUntil),
        )
    if isinstance(event, TemplateStatusChanged):
        return "template.status", TemplateStatusData(
            id=event.templateId,
            metaTemplateId=event.metaTemplateId,
            name=event.name,
            language=event.language,
            status=event.status,
            previousStatus=event.previousStatus,
            reason=event.reason,
        )
    if isinstance(event, OtpFinished):
        return f"otp.{event.status}", OtpData(
            id=event.otpId, to=event.to, status=event.status, externalId=event.externalId
        )
    if isinstance(event, InstanceHealth):
        verdict = {
            "status": "restricted" if event.restricted else "recovered",
            "capsReduced": event.restricted,
            "dayCapFactor": event.dayCapFactor if event.restricted else 1.0,
            "score": event.score,
            "minScore": event.minScore,
        }
        return "instance.health", InstanceHealthData.model_validate(event.health | verdict)
    return None
