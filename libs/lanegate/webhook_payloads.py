"""The webhook bodies tenants receive, as the OpenAPI `webhooks` section documents them."""

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from lanegate.events import Lane


class InstanceEventData(BaseModel):
    state: Literal["open", "close"]
    reason: str | None
    phoneNumber: str | None


class MessageStatusData(BaseModel):
    id: str = Field(description="The message id returned when it was queued.")
    status: Literal["sent", "delivered", "read", "failed"]
    to: str
    lane: Lane
    providerMessageId: str | None
    error: dict[str, Any] | None


class MessageReceivedData(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from")
    pushName: str | None
    messageType: str
    text: str | None = Field(description="null for media messages")
    messageId: str
    timestamp: int = Field(description="Unix seconds when the contact sent it.")
    content: dict[str, Any] | None = Field(
        default=None,
        description="Media, location, reaction or button reply details; absent for plain text",
    )


class InstanceConnectedWebhook(BaseModel):
    event: Literal["instance.connected"]
    instanceName: str
    data: InstanceEventData
    timestamp: str


class InstanceDisconnectedWebhook(BaseModel):
    event: Literal["instance.disconnected"]
    instanceName: str
    data: InstanceEventData
    timestamp: str


class InstancePausedData(BaseModel):
    reason: str
    until: str | None = Field(
        description="null: until resumed (or, for a provider's ban, "
        "until the number connects again)"
    )
    by: Literal["provider", "tenant"]


class InstancePausedWebhook(BaseModel):
    event: Literal["instance.paused"]
    instanceName: str
    data: InstancePausedData
    timestamp: str


class InstanceResumedWebhook(BaseModel):
    event: Literal["instance.resumed"]
    instanceName: str
    data: dict[str, Any] = Field(description="Empty: the instance's messages go again")
    timestamp: str


class MessageStatusWebhook(BaseModel):
    event: Literal["message.status"]
    instanceName: str
    data: MessageStatusData
    timestamp: str


class MessageReceivedWebhook(BaseModel):
    event: Literal["message.received"]
    instanceName: str
    data: MessageReceivedData
    timestamp: str


class MessageExpiredData(BaseModel):
    id: str = Field(description="The message id returned when it was queued.")
    status: Literal["expired"]
    to: str
    lane: Lane
    validUntil: str = Field(description="When it stopped being worth sending; it never went.")


class MessageExpiredWebhook(BaseModel):
    event: Literal["message.expired"]
    instanceName: str
    data: MessageExpiredData
    timestamp: str


class TemplateStatusData(BaseModel):
    id: str = Field(description="The template's id in this API")
    metaTemplateId: str
    name: str
    language: str
    status: str = Field(description="APPROVED, REJECTED, PAUSED, DISABLED, ...")
    previousStatus: str | None
    reason: str | None = Field(description="Meta's reason, e.g. for a rejection")


class TemplateStatusWebhook(BaseModel):
    event: Literal["template.status"]
    instanceName: str
    data: TemplateStatusData
    timestamp: str


class OtpData(BaseModel):
    id: str = Field(description="The OTP's id")
    to: str
    status: Literal["verified", "blocked", "expired"]
    externalId: str | None


class OtpWebhook(BaseModel):
    event: Literal["otp.verified", "otp.blocked", "otp.expired"]
    instanceName: str
    data: OtpData
    timestamp: str


class HealthPartData(BaseModel):
    rate: float
    points: float
    max: int


class InstanceHealthData(BaseModel):
    status: Literal["restricted", "recovered"]
    capsReduced: bool = Field(description="Whether the normal and bulk day caps are reduced now")
    dayCapFactor: float = Field(description="What the normal and bulk day caps are multiplied by")
    score: int = Field(description="The health score, 0-100, over the last `days` days")
    minScore: int = Field(description="The instance's health.minScore the score was held to")
    days: int
    sent: int
    replies: int
    failures: int
    blocks: int
    reports: int
    parts: dict[str, HealthPartData] = Field(description="replies, failures, blocks, reports")


class InstanceHealthWebhook(BaseModel):
    event: Literal["instance.health"]
    instanceName: str
    data: InstanceHealthData
    timestamp: str


WEBHOOKS: dict[str, type[BaseModel]] = {
    "instance.connected": InstanceConnectedWebhook,
    "instance.disconnected": InstanceDisconnectedWebhook,
    "instance.paused": InstancePausedWebhook,
    "instance.resumed": InstanceResumedWebhook,
    "message.status": MessageStatusWebhook,
    "message.received": MessageReceivedWebhook,
    "message.expired": MessageExpiredWebhook,
    "template.status": TemplateStatusWebhook,
    "otp.verified": OtpWebhook,
    "otp.blocked": OtpWebhook,
    "otp.expired": OtpWebhook,
    "instance.health": InstanceHealthWebhook,
}
