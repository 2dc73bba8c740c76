"""Gateway events as the tenant sees them: the webhook envelope and its data shapes."""

from typing import Any

from lanegate.events import (
    AnyEvent,
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

STATE_EVENTS = {"open": "instance.connected", "close": "instance.disconnected"}


def envelope(event: AnyEvent) -> dict[str, Any] | None:
    """The webhook body for an event, or None for events tenants are not sent."""
    name: str
    data: dict[str, Any]
    if isinstance(event, InstanceState):
        if event.state not in STATE_EVENTS:
            return None
        name = STATE_EVENTS[event.state]
        data = {"state": event.state, "reason": event.reason, "phoneNumber": event.phoneNumber}
    elif isinstance(event, MessageStatus):
        name = "message.status"
        data = {
            "id": event.messageId,
            "status": event.status,
            "to": event.to,
            "lane": event.lane,
            "providerMessageId": event.providerMessageId,
            "error": event.error,
        }
    elif isinstance(event, MessageReceived):
        name = "message.received"
        data = {
            "from": event.sender,
            "pushName": event.pushName,
            "messageType": event.messageType,
            "text": event.text,
            "messageId": event.providerMessageId,
            "timestamp": event.sentAt,
        }
        if event.content is not None:
            data["content"] = event.content
    elif isinstance(event, InstancePaused):
        name = "instance.paused"
        data = {
            "reason": event.reason,
            "until": iso_utc(event.until) if event.until else None,
            "by": event.by,
        }
    elif isinstance(event, InstanceResumed):
        name, data = "instance.resumed", {}
    elif isinstance(event, MessageExpired):
        name = "message.expired"
        data = {
            "id": event.messageId,
            "status": "expired",
            "to": event.to,
            "lane": event.lane,
            "validUntil": iso_utc(event.validUntil),
        }
    elif isinstance(event, TemplateStatusChanged):
        name = "template.status"
        data = {
            "id": event.templateId,
            "metaTemplateId": event.metaTemplateId,
            "name": event.name,
            "language": event.language,
            "status": event.status,
            "previousStatus": event.previousStatus,
            "reason": event.reason,
        }
    elif isinstance(event, OtpFinished):
        name = f"otp.{event.status}"
        data = {
            "id": event.otpId,
            "to": event.to,
            "status": event.status,
            "externalId": event.externalId,
        }
    else:
        return None
    return {
        "event": name,
        "instanceName": event.instanceName,
        "data": data,
        "timestamp": iso_utc(event.occurredAt),
    }
