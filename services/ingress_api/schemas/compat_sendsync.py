"""The SendSync client API's bodies, queries and answers (`/api/...`), mapped to native ones."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ingress_api.schemas.base import Body, PageMeta, WebhookUrl
from ingress_api.schemas.messages import MessageType

ConnectorType = Literal["WHATSAPP", "EMAIL"]

QueueStatus = Literal[
    "PENDING", "WAITING", "PROCESSING", "SENT", "FAILED", "CANCELED", "PENDING_APPROVAL"
]

# Each stored status as a SendSync client reads it; every status has exactly one.
QUEUE_STATUS: dict[str, QueueStatus] = {
    "pending_approval": "PENDING_APPROVAL",
    "pending": "PENDING",
    "deferred": "WAITING",
    "dispatching": "PROCESSING",
    "sending": "PROCESSING",
    "sent": "SENT",
    "failed": "FAILED",
    "expired": "FAILED",
    "canceled": "CANCELED",
    "rejected": "CANCELED",
}


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class Login(Body):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1000)


class Connector(BaseModel):
    id: str = Field(description="The instance name")
    name: str
    type: ConnectorType
    status: Literal["ACTIVE", "PAUSED", "DISCONNECTED"]
    companyId: str = Field(description="Your tenant id")


class WhatsAppConnection(BaseModel):
    status: Literal["QR_CODE", "CONNECTED", "DISCONNECTED"]
    qrCode: str | None = Field(None, description="data:image/png;base64,... while QR_CODE")


class WhatsAppStatus(BaseModel):
    status: Literal["QR_CODE", "CONNECTED", "DISCONNECTED"]
    phone: str | None = None


class QueueSend(Body):
    """`POST /api/queue/send` as JSON, or as multipart form fields with `attachments` files."""

    connectorId: str = Field(min_length=1, max_length=200, description="The instance name")
    to: str = Field(min_length=1, max_length=320)
    message: str = Field(min_length=1, max_length=4096)
    contactName: str | None = Field(None, max_length=200)
    messageType: MessageType = "GERAL"
    priority: int = Field(5, ge=1, le=10)
    scheduledAt: datetime | None = None
    requiresApproval: bool = False
    forceDirect: bool = Field(
        False,
        description="The urgent lane at priority 10, now: no scheduledAt; the connector's "
        "minimum gap between messages still holds",
    )
    notes: str | None = Field(None, max_length=2000)
    webhookUrl: WebhookUrl | None = None
    externalId: str | None = Field(
        None, min_length=1, max_length=200, description="Your reference; not unique"
    )
    attachmentUrl: WebhookUrl | None = Field(
        None, description="http(s) URL of a file the gateway fetches when it sends"
    )

    _type = field_validator("messageType", mode="before")(_upper)


class QueueBulk(Body):
    messages: list[dict[str, object]] = Field(min_length=1, max_length=1000)


class QueuedMessage(BaseModel):
    """A message as SendSync shows it when it is queued."""

    id: str
    status: QueueStatus
    to: str
    message: str | None
    priority: int
    connectorId: str
    messageType: str
    createdAt: str
    externalId: str | None


class BulkQueued(BaseModel):
    count: int
    messages: list[QueuedMessage]


class QueueQuery(Body):
    """`GET /api/queue/list` filters; newest first."""

    status: QueueStatus | None = None
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(250, ge=1, le=250)
    externalId: str | None = Field(None, min_length=1, max_length=200)
    search: str | None = Field(None, min_length=1, max_length=200)
    connectorId: str | None = Field(None, min_length=1, max_length=200)
    messageType: MessageType | None = None
    dateFrom: datetime | None = None
    dateTo: datetime | None = None

    _status = field_validator("status", "messageType", mode="before")(_upper)


class ListedAttachment(BaseModel):
    id: str
    url: str
    originalFileName: str | None


class ListedMessage(QueuedMessage):
    sentAt: str | None
    scheduledAt: str | None
    contactName: str | None
    notes: str | None
    error: dict[str, Any] | None
    attachments: list[ListedAttachment]


class QueueList(BaseModel):
    data: list[ListedMessage]
    meta: PageMeta


class ContactSave(Body):
    """`POST /api/contacts`: a WhatsApp number or an e-mail address, created or renamed."""

    identifier: str = Field(min_length=1, max_length=320)
    type: ConnectorType = "WHATSAPP"
    name: str | None = Field(None, max_length=200)

    _type = field_validator("type", mode="before")(_upper)


class ContactsQuery(Body):
    """`GET /api/contacts`: every contact by identifier, a page of up to 1,000 at a time."""

    type: ConnectorType | None = None
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(1000, ge=1, le=1000)

    _type = field_validator("type", mode="before")(_upper)


class PreviewIssue(BaseModel):
    path: list[str | int]
    message: str
    code: str | None = None


class PreviewedRow(BaseModel):
    row: int = Field(description="The row's line in the file")
    fields: dict[str, str | bool]
    issues: list[PreviewIssue]


class ImportPreview(BaseModel):
    rows: list[PreviewedRow]
