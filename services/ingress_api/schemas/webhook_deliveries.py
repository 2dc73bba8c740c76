"""Webhook delivery log bodies and answers: listing, detail and replay."""

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
)

from ingress_api.schemas.base import Body, WebhookEventName

DeliveryStatus = Literal["pending", "retrying", "delivered", "dead"]


class DeliveryQuery(Body):
    """Query string of `GET /webhooks/deliveries`."""

    instanceName: str | None = Field(None, max_length=200)
    status: DeliveryStatus | None = None
    event: WebhookEventName | None = None
    messageId: str | None = Field(None, max_length=100, description="One message's events")
    since: AwareDatetime | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=200, description="nextCursor of the previous page")


class BulkReplay(Body):
    """`POST /webhooks/replay`: reset an instance's dead deliveries since a time."""

    instanceName: str = Field(max_length=200)
    since: AwareDatetime
    status: Literal["dead"] = "dead"


class DeliveryAttempt(BaseModel):
    at: str
    statusCode: int | None
    durationMs: float
    error: str | None


class DeliverySummary(BaseModel):
    id: str = Field(description="The event id, sent as `webhook-id`.")
    instanceName: str
    event: str
    url: str
    status: DeliveryStatus
    attemptCount: int
    lastStatusCode: int | None
    lastError: str | None
    createdAt: str
    nextAttemptAt: str | None
    deliveredAt: str | None


class DeliveryPage(BaseModel):
    deliveries: list[DeliverySummary]
    nextCursor: str | None


class DeliveryDetail(DeliverySummary):
    payload: dict[str, Any]
    attempts: list[DeliveryAttempt]


class ReplayAccepted(BaseModel):
    replayed: int
    deliveryIds: list[str]
