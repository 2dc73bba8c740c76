"""Send bodies (one per message type, routed and bulk) and the answers to a send."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    RootModel,
    ValidationInfo,
    field_validator,
)

from ingress_api.schemas.base import (
    MAX_SCHEDULE_AHEAD,
    NAME_PART,
    TENANT_ID,
    Body,
    PhoneNumber,
    WebhookUrl,
    as_utc,
)
from lanegate import spintax
from lanegate.events import Lane

MessageType = Literal["GERAL", "NOTIFICATION", "MARKETING", "TRANSACTIONAL", "SUPPORT", "REMINDER"]


def _spintax(value: str) -> str:
    try:
        spintax.validate(value)
    except spintax.SpintaxError as e:
        raise ValueError(str(e)) from e
    return value


def _spintax_optional(value: str | None) -> str | None:
    return None if value is None else _spintax(value)


class SendOptions(Body):
    """Fields every send takes, whatever the message type and however the instance is named."""

    to: PhoneNumber
    lane: Lane = "normal"
    webhookUrl: WebhookUrl | None = Field(
        None, description="Receives this message's status events instead of the instance webhook."
    )
    priority: int = Field(5, ge=1, le=10, description="10 goes first within a lane")
    scheduledAt: datetime | None = Field(None, description="ISO 8601; not sent before")
    validUntil: datetime | None = Field(None, description="ISO 8601; expires if still waiting")
    requiresApproval: bool = False
    externalId: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Your reference; a repeat with the same body returns the first message",
    )
    contactName: str | None = Field(
        None, max_length=200, description="Creates or renames the contact"
    )
    notes: str | None = Field(None, max_length=2000, description="Internal; never sent")
    messageType: MessageType = "GERAL"
    force: bool = Field(False, description="Send even to a contact marked inactive")

    @field_validator("scheduledAt")
    @classmethod
    def _schedule(cls, value: datetime | None) -> datetime | None:
        value = as_utc(value)
        if value is not None and value > datetime.now(UTC) + MAX_SCHEDULE_AHEAD:
            raise ValueError("Must be within a year from now")
        return value

    @field_validator("validUntil")
    @classmethod
    def _valid_until(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        value = as_utc(value)
        if value is None:
            return value
        if value <= datetime.now(UTC):
            raise ValueError("Must be in the future")
        scheduled = info.data.get("scheduledAt")
        if scheduled is not None and value <= scheduled:
            raise ValueError("Must be after scheduledAt")
        return value


class SendCommon(SendOptions):
    """A send through a named instance."""

    instanceName: str = Field(max_length=200)


class TextContent(Body):
    text: str = Field(min_length=1, max_length=4096, description="Supports spintax.")
    subject: str | None = Field(
        None,
        min_length=1,
        max_length=998,
        pattern=r"^[^\r\n]*$",
        description="E-mail only (one line); supports spintax.",
    )
    html: str | None = Field(
        None, min_length=1, max_length=262144, description="E-mail only; supports spintax."
    )

    _text = field_validator("text")(_spintax)
    _email_parts = field_validator("subject", "html")(_spintax_optional)


class ImageContent(Body):
    imageUrl: AnyHttpUrl
    caption: str | None = Field(None, max_length=1024, description="Supports spintax.")

    _caption = field_validator("caption")(_spintax_optional)


class DocumentContent(Body):
    documentUrl: AnyHttpUrl
    fileName: str | None = Field(None, min_length=1, max_length=240)
    caption: str | None = Field(None, max_length=1024, description="Supports spintax.")

    _caption = field_validator("caption")(_spintax_optional)


class AudioContent(Body):
    audioUrl: AnyHttpUrl


class VideoContent(Body):
    videoUrl: AnyHttpUrl
    caption: str | None = Field(None, max_length=1024, description="Supports spintax.")

    _caption = field_validator("caption")(_spintax_optional)


class LocationContent(Body):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(None, max_length=1000)
    address: str | None = Field(None, max_length=1000)


class ReplyButton(Body):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class ButtonsContent(Body):
    """Interactive reply buttons (providers with `supportsButtons`)."""

    body: str = Field(min_length=1, max_length=1024, description="Supports spintax.")
    buttons: list[ReplyButton] = Field(min_length=1, max_length=3)
    header: str | None = Field(None, max_length=60)
    footer: str | None = Field(None, max_length=60)

    _body = field_validator("body")(_spintax)

    @field_validator("buttons")
    @classmethod
    def _unique_ids(cls, value: list[ReplyButton]) -> list[ReplyButton]:
        if len({b.id for b in value}) != len(value):
            raise ValueError("Button ids must be unique")
        return value


class ListRow(Body):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=24)
    description: str | None = Field(None, max_length=72)


class ListSection(Body):
    title: str | None = Field(None, max_length=24)
    rows: list[ListRow] = Field(min_length=1, max_length=10)


class ListContent(Body):
    """An interactive list (providers with `supportsButtons`); at most 10 rows in all."""

    body: str = Field(min_length=1, max_length=4096, description="Supports spintax.")
    button: str = Field(min_length=1, max_length=20)
    sections: list[ListSection] = Field(min_length=1, max_length=10)
    header: str | None = Field(None, max_length=60)
    footer: str | None = Field(None, max_length=60)

    _body = field_validator("body")(_spintax)

    @field_validator("sections")
    @classmethod
    def _ten_rows(cls, value: list[ListSection]) -> list[ListSection]:
        if sum(len(s.rows) for s in value) > 10:
            raise ValueError("A list has at most 10 rows in all")
        return value


class TextMessage(SendCommon, TextContent):
    pass


class AttachmentMessage(SendCommon):
    """`POST /message/attachment` as JSON: a file the gateway downloads when it sends."""

    attachmentUrl: WebhookUrl | None = Field(
        None, description="http(s) URL fetched by the gateway at send time (size-capped)"
    )
    fileName: str | None = Field(None, min_length=1, max_length=240)
    caption: str | None = Field(None, max_length=1024, description="Supports spintax.")

    _caption = field_validator("caption")(_spintax_optional)


class LocationMessage(SendCommon, LocationContent):
    pass


class ButtonsMessage(SendCommon, ButtonsContent):
    pass


class ListMessage(SendCommon, ListContent):
    pass


class ImageMessage(SendCommon, ImageContent):
    pass


class DocumentMessage(SendCommon, DocumentContent):
    pass


class AudioMessage(SendCommon, AudioContent):
    pass


class VideoMessage(SendCommon, VideoContent):
    pass


class RoutedCommon(SendOptions):
    """`/message/send`: the gateway picks one of the client's instances."""

    tenantId: str = Field(pattern=TENANT_ID)
    clientId: str = Field(pattern=rf"^{NAME_PART}$")


class RoutedText(RoutedCommon, TextContent):
    type: Literal["text"]


class RoutedImage(RoutedCommon, ImageContent):
    type: Literal["image"]


class RoutedDocument(RoutedCommon, DocumentContent):
    type: Literal["document"]


class RoutedAudio(RoutedCommon, AudioContent):
    type: Literal["audio"]


class RoutedVideo(RoutedCommon, VideoContent):
    type: Literal["video"]


class RoutedLocation(RoutedCommon, LocationContent):
    type: Literal["location"]


class RoutedButtons(RoutedCommon, ButtonsContent):
    type: Literal["buttons"]


class RoutedList(RoutedCommon, ListContent):
    type: Literal["list"]


class RoutedMessage(
    RootModel[
        Annotated[
            RoutedText
            | RoutedImage
            | RoutedDocument
            | RoutedAudio
            | RoutedVideo
            | RoutedLocation
            | RoutedButtons
            | RoutedList,
            Field(discriminator="type"),
        ]
    ]
):
    """`/message/send` body: `type` picks the fields that are required."""


class Accepted(BaseModel):
    id: str
    status: str = Field(
        description="pending or pending_approval; a repeated externalId shows "
        "the first message's status now"
    )
    lane: Lane
    queuedAt: str
    externalId: str | None = None
    instanceState: Literal["close", "connecting", "open"] = Field(
        description="The instance's connection (as of a few seconds ago): a message to an "
        "instance that is not open waits until it is"
    )


BULK_MAX_MESSAGES = 1000


class BulkSend(Body):
    """`POST /message/bulk`: each item is a send body plus `type` (default `text`)."""

    messages: list[dict[str, Any]] = Field(min_length=1, max_length=BULK_MAX_MESSAGES)


class BulkAccepted(BaseModel):
    accepted: int
    messages: list[Accepted]


class RoutedAccepted(Accepted):
    instanceName: str


class MessageChanged(BaseModel):
    """The answer of approve, reject and cancel."""

    id: str
    status: Literal["pending", "rejected", "canceled"]
