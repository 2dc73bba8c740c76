"""Reading messages back: one message, listings and a contact's messages."""

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from ingress_api.schemas.base import CURSOR_HELP, Body, CursorPage, PageMeta, PhoneNumber
from ingress_api.schemas.messages import ListSection, LocationContent, MessageType, ReplyButton
from lanegate.events import Lane

ListedStatus = Literal[
    "pending", "pending_approval", "sent", "failed", "canceled", "rejected", "expired"
]


class MessageQuery(Body):
    """`GET /messages` filters (query string); newest first."""

    status: ListedStatus | None = None
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(50, ge=1, le=250)
    externalId: str | None = Field(None, max_length=200)
    search: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Matches the recipient (also as written: +55 11 99999-8888), the contact "
        "name and the text",
    )
    instanceName: str | None = Field(None, max_length=200)
    messageType: MessageType | None = None
    lane: Lane | None = None
    dateFrom: datetime | None = None
    dateTo: datetime | None = None
    cursor: str | None = Field(None, min_length=1, max_length=300, description=CURSOR_HELP)
    to: PhoneNumber | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("messageType", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ContactMessagesQuery(Body):
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=250)
    instanceName: str | None = Field(None, max_length=200)


class SentMedia(BaseModel):
    """A message's file: by `url`, or an uploaded `attachmentId`."""

    url: str | None = None
    attachmentId: str | None = None
    filename: str | None = None
    caption: str | None = None
    mimeType: str | None = None


class SentTemplate(BaseModel):
    id: str | None
    name: str
    language: str
    variables: list[str] | dict[str, str]


class SentList(BaseModel):
    button: str
    sections: list[ListSection]


class MessageView(BaseModel):
    id: str
    instanceName: str
    lane: Lane
    to: str
    type: str
    status: str = Field(description="pending, sent, failed, canceled, expired, ...")
    createdAt: str
    sentAt: str | None
    deliveredAt: str | None
    readAt: str | None
    error: dict[str, Any] | None
    priority: int | None = None
    scheduledAt: str | None = None
    validUntil: str | None = None
    text: str | None = Field(
        None, description="The text, caption or body as given, spintax unresolved"
    )
    sentText: str | None = Field(None, description="The variant actually sent, once sent")
    messageType: str = "GERAL"
    externalId: str | None = None
    contactName: str | None = None
    notes: str | None = None
    webhookUrl: str | None = Field(None, description="This message's own status webhook")
    attempts: int = Field(0, description="Tries at the provider so far")
    media: SentMedia | None = Field(
        None, description="Media and attachment messages (the first file of an upload)"
    )
    attachments: list[SentMedia] | None = Field(None, description="Every uploaded file")
    location: LocationContent | None = None
    template: SentTemplate | None = None
    buttons: list[ReplyButton] | None = None
    list: SentList | None = None
    header: str | None = None
    footer: str | None = None
    subject: str | None = Field(
        None, description="E-mail: the subject as given, spintax unresolved"
    )
    html: str | None = Field(None, description="E-mail: the html part as given")


class ListedMessage(MessageView):
    """A message in a listing: the same fields as `GET /message/{id}`."""


class MessageList(BaseModel):
    data: list[ListedMessage]
    meta: PageMeta
    pagination: CursorPage


class ConversationMessage(BaseModel):
    """One message of a conversation, either way."""

    id: str
    direction: Literal["inbound", "outbound"]
    instanceName: str
    from_: str | None = Field(
        alias="from",
        description="Null for an outbound message of an instance whose number is not known yet",
    )
    to: str | None
    type: str
    text: str | None
    timestamp: str = Field(description="When it was received (inbound) or accepted (outbound)")
    status: str = Field(
        description="Outbound: the furthest receipt (pending, sent, delivered, read, failed; "
        "canceled, rejected or expired for one that never went); inbound: received"
    )
    pushName: str | None = None
    content: dict[str, Any] | None = Field(None, description="Inbound media or other details")


class ContactMessages(BaseModel):
    messages: list[ConversationMessage]
    pagination: CursorPage
