"""Events on the broker: one pydantic model each, shared by producer and consumer.
An event's routing key is its `kind`; a consumer parses a body into its queue's kinds."""

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Lane = Literal["urgent", "normal", "bulk"]
InstanceStateName = Literal["close", "connecting", "open"]
MessageStatusName = Literal["sent", "delivered", "read", "failed"]


def utcnow() -> datetime:
    """Return the current time in UTC, to the millisecond (what MongoDB keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_id() -> str:
    """Return a new random UUID v4 as a string."""
    return str(uuid.uuid4())


_STATUS_IDS = uuid.UUID("6f1c2d9e-3b8a-4c5d-9e7f-0a1b2c3d4e5f")


def status_event_id(message_id: str, status: str) -> str:
    """The one event id of a message reaching a status, so reporting it twice dedupes."""
    return str(uuid.uuid5(_STATUS_IDS, f"{message_id}:{status}"))


def received_event_id(instance_name: str, provider_message_id: str) -> str:
    """The one event id of an inbound message, so a replayed callback dedupes."""
    return str(uuid.uuid5(_STATUS_IDS, f"received:{instance_name}:{provider_message_id}"))


class Event(BaseModel):
    """Fields every event carries: a stable id (dedupe key) and when it happened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_id)
    occurredAt: datetime = Field(default_factory=utcnow)
    tenantId: str
    instanceName: str


class LinedMessage(Event):
    """What the scheduler needs to put a stored waiting message in its instance's line."""

    messageId: str
    lane: Lane
    priority: int = 5
    scheduledAt: datetime | None = None
    validUntil: datetime | None = None
    to: str | None = None


class MessageAccepted(LinedMessage):
    """A message was stored as pending (or approved); the scheduler should plan it.

    Before `message.handed_back` existed provider-sender handed messages back with this
    event too; the scheduler still takes such a copy from a queue as a hand-back.
    """

    kind: Literal["message.accepted"] = "message.accepted"
    awaitingApproval: bool = False


def _lined(message: dict[str, Any], at: datetime | None) -> dict[str, Any]:
    """The fields of a lined-message event for a stored message, as of `at` (now)."""
    return {
        "occurredAt": at or utcnow(),
        "tenantId": str(message["tenantId"]),
        "instanceName": message["instanceName"],
        "messageId": message["_id"],
        "lane": message["lane"],
        "priority": message.get("priority", 5),
        "scheduledAt": message.get("scheduledAt"),
        "validUntil": message.get("validUntil"),
        "to": message.get("to"),
    }


def accepted(message: dict[str, Any], *, at: datetime | None = None) -> MessageAccepted:
    """The event that puts a stored waiting message in its line (at its accept or its
    approval): `at` is when that happened (now)."""
    return MessageAccepted(
        **_lined(message, at), awaitingApproval=message.get("status") == "pending_approval"
    )


class MessageHandedBack(LinedMessage):
    """provider-sender gave a claimed message back (deferred, or its session not open): the
    scheduler frees its instance's slot and plans it again once it is pending."""

    kind: Literal["message.handed_back"] = "message.handed_back"


def handed_back(message: dict[str, Any], *, at: datetime | None = None) -> MessageHandedBack:
    """The event of a message provider-sender hands back, as of `at` (now)."""
    return MessageHandedBack(**_lined(message, at))


class MessageCanceled(Event):
    """A waiting message was canceled or rejected (or a withdrawn one canceled, the provider
    never having had it); the scheduler should forget it."""

    kind: Literal["message.canceled"] = "message.canceled"
    messageId: str
    status: Literal["canceled", "rejected"]


def canceled(message: dict[str, Any], status: Literal["canceled", "rejected"]) -> MessageCanceled:
    """The event of a stored message that will never be sent, canceled or rejected."""
    return MessageCanceled(
        tenantId=str(message["tenantId"]),
        instanceName=message["instanceName"],
        messageId=message["_id"],
        status=status,
    )


class MessageExpired(Event):
    """A message was still waiting when its `validUntil` passed; it will never be sent."""

    kind: Literal["message.expired"] = "message.expired"
    messageId: str
    to: str
    lane: Lane
    validUntil: datetime


def expired(message: dict[str, Any]) -> MessageExpired:
    """The event of a stored message whose `validUntil` passed (one id per message)."""
    return MessageExpired(
        id=status_event_id(message["_id"], "expired"),
        tenantId=str(message["tenantId"]),
        instanceName=message["instanceName"],
        messageId=message["_id"],
        to=message["to"],
        lane=message["lane"],
        validUntil=message["validUntil"],
    )


class MessageDispatch(Event):
    """The scheduler cleared a message to go now; provider-sender should send it."""

    kind: Literal["message.dispatch"] = "message.dispatch"
    messageId: str
    lane: Lane


class MessageStatus(Event):
    """A message changed state at the provider (sent, delivered, read, failed)."""

    kind: Literal["message.status"] = "message.status"
    messageId: str
    status: MessageStatusName
    to: str
    lane: Lane
    providerMessageId: str | None = None
    error: dict[str, Any] | None = None


class MessageReceived(Event):
    """Somebody wrote to an instance's number."""

    kind: Literal["message.received"] = "message.received"
    sender: str
    pushName: str | None = None
    messageType: str = "conversation"
    text: str | None = None
    providerMessageId: str
    sentAt: int
    content: dict[str, Any] | None = None  # media, location, reaction or button reply details


class InstanceState(Event):
    """An instance's connection changed (open, connecting, close)."""

    kind: Literal["instance.state"] = "instance.state"
    state: InstanceStateName
    reason: str | None = None
    phoneNumber: str | None = None


PauseScope = Literal["instance", "new_contacts"]
# Who paused a number: its provider (a ban, lifted when it connects again) or its tenant
# (lifted only by a resume or its `until`).
PausedBy = Literal["provider", "tenant"]


class InstancePaused(Event):
    """A provider signalled that the number must stop sending (a ban or a block), or its
    tenant paused it; with scope `new_contacts` only sends to people who never wrote wait
    (WAHA's reach-out timelock)."""

    kind: Literal["instance.paused"] = "instance.paused"
    reason: str
    until: datetime | None = None
    scope: PauseScope = "instance"
    by: PausedBy = "provider"


class InstanceResumed(Event):
    """The tenant lifted the instance's pause, its provider's ban included; messages deferred
    until the lifted pause's end (`pausedUntil`) go now."""

    kind: Literal["instance.resumed"] = "instance.resumed"
    pausedUntil: datetime | None = None


class InstanceConfigured(Event):
    """An instance's pacing settings changed, or it was deleted; its scheduler reads it again
    (and drops the line of one that is gone)."""

    kind: Literal["instance.configured"] = "instance.configured"


class InstanceHealth(Event):
    """An instance's health score crossed its `health.minScore`: its normal and bulk day caps
    were reduced (`restricted`) or are back (recovered); `health` is the score's view."""

    kind: Literal["instance.health"] = "instance.health"
    restricted: bool
    score: int
    minScore: int
    dayCapFactor: float
    health: dict[str, Any]


class ProviderCommand(Event):
    """Ask provider-sender to act on an instance's session (sandbox scan, inbound, logout)."""

    kind: Literal["provider.command"] = "provider.command"
    command: Literal["sandbox.scan", "sandbox.inbound", "sandbox.disconnect", "sandbox.ban"]
    payload: dict[str, Any] = Field(default_factory=dict)


RpcOperation = Literal["start", "qr", "pairing_code", "status", "logout"]


class ProviderRpc(Event):
    """A request to provider-sender that ingress waits for; the answer goes to `replyTo`."""

    kind: Literal["provider.rpc"] = "provider.rpc"
    operation: RpcOperation
    payload: dict[str, Any] = Field(default_factory=dict)
    replyTo: str
    deadline: datetime


CALLBACK_SEAL_LABEL = "lanegate provider.callback seal v1"


class ProviderCallback(Event):
    """A provider's callback, its signature already checked by ingress, for normalising."""

    kind: Literal["provider.callback"] = "provider.callback"
    provider: str
    body: str
    # ingress-api's HMAC over every other field (`sealed_content`), checked by provider-sender.
    seal: str = ""

    def sealed_content(self) -> bytes:
        """The fields the seal covers, as canonical JSON."""
        fields = self.model_dump(mode="json", exclude={"seal"})
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


class TemplateSyncRequested(Event):
    """Ask template-sync to pull an instance's templates now."""

    kind: Literal["template.sync"] = "template.sync"


class WebhookReplay(Event):
    """Deliveries were reset for another try; webhook-dispatcher should attempt them now."""

    kind: Literal["webhook.replay"] = "webhook.replay"
    deliveryIds: list[str] = Field(min_length=1, max_length=1000)


class TemplateRpc(Event):
    """A template request from ingress that waits for template-sync's answer on `replyTo`."""

    kind: Literal["template.rpc"] = "template.rpc"
    operation: Literal["sync"] = "sync"
    replyTo: str
    deadline: datetime


class TemplateStatusReported(Event):
    """Meta's verified callback said a template's status changed; template-sync records it."""

    kind: Literal["template.reported"] = "template.reported"
    wabaId: str
    metaTemplateId: str
    name: str
    language: str
    status: str
    reason: str | None = None
    category: str | None = None
    # Meta's time of the report; None from a provider that gives none.
    reportedAt: datetime | None = None


class TemplateStatusChanged(Event):
    """A stored template's status changed; the tenant's webhook hears it as `template.status`."""

    kind: Literal["template.status"] = "template.status"
    templateId: str
    metaTemplateId: str
    name: str
    language: str
    status: str
    previousStatus: str | None = None
    reason: str | None = None


OtpOutcome = Literal["verified", "blocked", "expired"]


class OtpFinished(Event):
    """A one-time code reached an outcome; the tenant's webhook hears it as `otp.<status>`."""

    kind: Literal["otp.finished"] = "otp.finished"
    otpId: str
    to: str
    status: OtpOutcome
    externalId: str | None = None


def otp_finished(record: dict[str, Any], status: OtpOutcome) -> OtpFinished:
    """The event of an OTP's outcome; its id follows from the OTP and the outcome, so telling
    it twice delivers it once."""
    return OtpFinished(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"lanegate:otp:{record['_id']}:{status}")),
        tenantId=record["tenantId"],
        instanceName=record["instanceName"],
        otpId=record["_id"],
        to=record["to"],
        status=status,
        externalId=record.get("externalId"),
    )


AnyEvent = Annotated[
    MessageAccepted
    | MessageHandedBack
    | MessageDispatch
    | MessageStatus
    | MessageReceived
    | InstanceState
    | ProviderCommand
    | TemplateSyncRequested
    | MessageCanceled
    | MessageExpired
    | InstancePaused
    | InstanceResumed
    | InstanceConfigured
    | InstanceHealth
    | ProviderRpc
    | ProviderCallback
    | WebhookReplay
    | TemplateRpc
    | TemplateStatusReported
    | TemplateStatusChanged
    | OtpFinished,
    Field(discriminator="kind"),
]
EVENTS: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse(body: bytes) -> AnyEvent:
    """Parse a broker body into its event model; raises pydantic.ValidationError."""
    return EVENTS.validate_json(body)


def encode(event: Event) -> bytes:
    """Serialise an event for the broker."""
    return event.model_dump_json().encode()
