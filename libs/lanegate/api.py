"""Request bodies of the tenant API (seed 004), validated once at the edge."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lanegate import phones, signing, spintax
from lanegate.events import Lane

TENANT_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
_PART = r"[A-Za-z0-9][A-Za-z0-9-]{0,62}"
INSTANCE_NAME = re.compile(rf"^({_PART})__({_PART})__({_PART})$")

Provider = Literal["sandbox", "cloud_api", "waha"]


def parse_instance_name(name: str) -> tuple[str, str, str] | None:
    """Split `{tenant}__{client}__{label}` into its parts, or None when it does not match."""
    match = INSTANCE_NAME.match(name)
    return (match[1], match[2], match[3]) if match else None


# Characters that could split a header or a request line if a URL ever reached one raw.
_UNSAFE_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f<>\"{}|\\^`]")


def _plain_url_text(value: Any) -> Any:
    # Surrounding spaces are trimmed, but a control character anywhere (a trailing CR/LF too)
    # is refused rather than silently dropped.
    if isinstance(value, str) and _UNSAFE_URL_CHARACTERS.search(value.strip(" ")):
        raise ValueError('Must not contain spaces, control characters or <>"{}|\\^`')
    return value


def _no_credentials(value: AnyHttpUrl) -> AnyHttpUrl:
    if value.username or value.password:
        raise ValueError("Must not carry credentials (user:password@)")
    return value


# A tenant webhook: http(s) only, no credentials, nothing that could inject a header.
WebhookUrl = Annotated[
    AnyHttpUrl, BeforeValidator(_plain_url_text), AfterValidator(_no_credentials)
]

# Event names a tenant can receive and filter on (`webhookEvents`).
WebhookEventName = Literal[
    "instance.connected",
    "instance.disconnected",
    "instance.paused",
    "instance.resumed",
    "instance.webhook_disabled",
    "message.received",
    "message.status",
    "message.expired",
    "template.status",
]


class Body(BaseModel):
    """Base of request bodies: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# The validation context key of the country a number written without its country code is in.
DEFAULT_COUNTRY = "defaultCountry"
# The validation context key that leaves numbers as written, for a body whose country is not
# known yet (a routed send's number is read once its instance is picked).
NUMBERS_READ_LATER = "numbersReadLater"


def _phone(value: str, info: ValidationInfo) -> str:
    context = info.context if isinstance(info.context, dict) else {}
    if context.get(NUMBERS_READ_LATER):
        return value
    try:
        return phones.normalized(value, context.get(DEFAULT_COUNTRY))
    except phones.InvalidPhoneNumber as e:
        raise PydanticCustomError(
            phones.ISSUE_CODE, "{code}: {reason}", {"code": phones.ISSUE_CODE, "reason": str(e)}
        ) from e


# A phone number as people write it; validated into E.164 digits without `+`.
PhoneNumber = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="E.164 digits (5511999998888), or as written: +55 11 99999-8888, "
        "(011) 99999-8888 with a defaultCountry",
    ),
    AfterValidator(_phone),
]


def _country(value: str | None) -> str | None:
    if value is None:
        return value
    if not phones.is_country(value.upper()):
        raise ValueError("Must be an ISO 3166 alpha-2 country code such as BR or US")
    return value.upper()


# The country numbers written without their country code are read in.
DefaultCountry = Annotated[
    str | None,
    Field(
        None,
        description="ISO 3166 alpha-2 (BR): numbers written without +country code are "
        "read in this country",
    ),
    AfterValidator(_country),
]


class TenantCreate(Body):
    id: str = Field(pattern=TENANT_ID)
    name: str = Field(min_length=1, max_length=200)
    maxInstances: int | None = Field(
        None, ge=0, le=1_000_000, description="Omit (or null) for LANEGATE_TENANT_MAX_INSTANCES."
    )
    maxMessagesPerDay: int | None = Field(
        None,
        ge=0,
        le=1_000_000_000,
        description="Messages accepted per UTC day; omit (or null) for "
        "LANEGATE_TENANT_MAX_MESSAGES_PER_DAY.",
    )
    defaultCountry: DefaultCountry = None


class LaneSettings(Body):
    """One lane's pacing override: the random gap window and the caps."""

    delayMs: tuple[int, int] | None = None
    perHour: int | None = Field(None, gt=0)
    perDay: int | None = Field(None, gt=0)

    @field_validator("delayMs")
    @classmethod
    def _window(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 0 <= value[0] <= value[1] <= 86_400_000:
            raise ValueError("Must be [min, max] milliseconds with 0 <= min <= max")
        return value


class LaneOverrides(Body):
    urgent: LaneSettings | None = None
    normal: LaneSettings | None = None
    bulk: LaneSettings | None = None


Scope = Literal[
    "instances:read",
    "instances:write",
    "messages:read",
    "messages:write",
    "templates:read",
    "templates:sync",
]


class TenantUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    disabled: bool | None = None
    maxInstances: int | None = Field(
        None, ge=0, le=1_000_000, description="Omit (or null) for LANEGATE_TENANT_MAX_INSTANCES."
    )
    maxMessagesPerDay: int | None = Field(
        None,
        ge=0,
        le=1_000_000_000,
        description="Messages accepted per UTC day; omit (or null) for "
        "LANEGATE_TENANT_MAX_MESSAGES_PER_DAY.",
    )
    defaultCountry: DefaultCountry = None


class KeyCreate(Body):
    name: str | None = Field(None, max_length=200)
    scopes: list[Scope] | None = Field(None, description="Omit for a key with every scope.")
    rateLimitPerMinute: int | None = Field(
        None, ge=1, le=1_000_000, description="Omit for the gateway's default."
    )


MessageType = Literal["GERAL", "NOTIFICATION", "MARKETING", "TRANSACTIONAL", "SUPPORT", "REMINDER"]
ListedStatus = Literal[
    "pending", "pending_approval", "sent", "failed", "canceled", "rejected", "expired"
]


CURSOR_HELP = "`pagination.next` of the previous page, for paging past what `page` reaches"


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


class ContactQuery(Body):
    tag: str | None = Field(None, min_length=1, max_length=100)
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(50, ge=1, le=250)
    cursor: str | None = Field(None, min_length=1, max_length=300, description=CURSOR_HELP)


class ContactUpsert(Body):
    identifier: PhoneNumber
    name: str | None = Field(None, max_length=200)
    tags: list[str] | None = Field(None, max_length=50)
    type: Literal["WHATSAPP"] = "WHATSAPP"


class ContactStatus(Body):
    active: bool
    reason: str | None = Field(None, max_length=500)


class SandboxConfig(Body):
    """The simulated phone's knobs: receipt delays, and numbers whose sends fail."""

    deliveredAfterMs: int | None = Field(None, ge=0, le=3_600_000)
    readAfterMs: int | None = Field(None, ge=0, le=3_600_000)
    failNumbers: list[PhoneNumber] = Field(default_factory=list, max_length=100)


class CloudApiConfig(Body):
    """A number on Meta's WhatsApp Cloud API; secrets are stored, never shown again."""

    phoneNumberId: str = Field(pattern=r"^[0-9]{1,30}$")
    wabaId: str = Field(pattern=r"^[0-9]{1,30}$")
    accessToken: SecretStr = Field(min_length=1, max_length=1024)
    appSecret: SecretStr = Field(min_length=1, max_length=256)
    verifyToken: str = Field(min_length=8, max_length=256)
    graphVersion: str = Field("v23.0", pattern=r"^v[0-9]{1,3}\.[0-9]{1,2}$")
    baseUrl: AnyHttpUrl = AnyHttpUrl("https://graph.facebook.com")


class WahaConfig(Body):
    """A number linked through a WAHA server; the API key is stored, never shown again."""

    baseUrl: AnyHttpUrl
    apiKey: SecretStr = Field(min_length=1, max_length=1024)
    session: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$")


PROVIDER_CONFIGS: dict[str, type[Body]] = {
    "sandbox": SandboxConfig,
    "cloud_api": CloudApiConfig,
    "waha": WahaConfig,
}


def stored_provider_config(
    provider: str, raw: dict[str, Any] | None, country: str | None = None
) -> dict[str, Any]:
    """Validate a provider's config (its numbers read in `country`) and return it as stored;
    raises pydantic.ValidationError."""
    model = PROVIDER_CONFIGS[provider]
    config = model.model_validate(raw or {}, context={DEFAULT_COUNTRY: country})
    stored: dict[str, Any] = {}
    for key, value in config.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, AnyHttpUrl):
            value = str(value).rstrip("/")
        stored[key] = value
    return stored


class WarmupSettings(Body):
    """A young number's day cap: `startPerDay` on day one, growing `growthPercent` a day."""

    startPerDay: int = Field(gt=0, le=100_000)
    growthPercent: float = Field(gt=0, le=1000)


class ThroughputSettings(Body):
    """Cloud API pacing: messages per second for the number, gap between sends to one person."""

    perSecond: int | None = Field(None, gt=0, le=1000)
    recipientGapMs: int | None = Field(None, ge=0, le=86_400_000)


def _timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError("Must be an IANA time zone such as America/Argentina/Buenos_Aires") from e
    return value


def _standard_secret(value: str) -> str:
    signing.standard_key(value)  # a whsec_ secret must decode to a usable key
    return value


# A plain secret keys both signatures as written; a `whsec_<base64>` one keys
# `webhook-signature` by its decoded bytes, as Standard Webhooks libraries do.
WebhookSecret = Annotated[
    str,
    Field(
        min_length=16,
        max_length=512,
        description="16+ characters, or whsec_<base64 of 24-64 bytes> (Standard Webhooks)",
    ),
    AfterValidator(_standard_secret),
]


class PacingFields(Body):
    """Pacing settings an instance takes at creation and through `PATCH /instance/{name}`."""

    lanes: LaneOverrides | None = None
    timezone: str | None = Field(None, max_length=64, description="IANA zone of the day caps")
    warmup: WarmupSettings | None = None
    throughput: ThroughputSettings | None = None

    _tz = field_validator("timezone")(_timezone)


class InstanceCreate(PacingFields):
    instanceName: str = Field(max_length=200)
    webhookUrl: WebhookUrl
    webhookSecret: WebhookSecret
    provider: Provider = "sandbox"
    providerConfig: dict[str, Any] | None = Field(
        None, description="SandboxConfig, CloudApiConfig or WahaConfig, by provider"
    )
    displayName: str | None = Field(None, max_length=200)
    isPrimary: bool = False
    defaultCountry: DefaultCountry = None

    @field_validator("instanceName")
    @classmethod
    def _name_format(cls, value: str) -> str:
        if parse_instance_name(value) is None:
            raise ValueError("Must follow {tenant}__{client}__{label} format")
        return value


class InstanceUpdate(PacingFields):
    """`PATCH /instance/{name}`: only the fields present change."""

    webhookUrl: WebhookUrl | None = None
    webhookSecret: WebhookSecret | None = None
    displayName: str | None = Field(None, max_length=200)
    isPrimary: bool | None = None
    webhookEvents: list[WebhookEventName] | None = Field(
        None, description="Only these events are delivered; null or empty means every event."
    )
    webhookEnabled: bool | None = Field(
        None, description="true re-enables a webhook the gateway disabled; false pauses it."
    )
    providerConfig: dict[str, Any] | None = Field(
        None,
        description="The provider config fields to change (the others stay); a cloud_api "
        "number is checked with Meta again.",
    )
    defaultCountry: DefaultCountry = Field(None, description="null: the tenant's")


def _spintax(value: str) -> str:
    try:
        spintax.validate(value)
    except spintax.SpintaxError as e:
        raise ValueError(str(e)) from e
    return value


def _spintax_optional(value: str | None) -> str | None:
    return None if value is None else _spintax(value)


MAX_SCHEDULE_AHEAD = timedelta(days=366)


def _utc(value: datetime | None) -> datetime | None:
    """A time in UTC; one written without an offset is read as UTC, the API's time zone."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC) if value is not None else None


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
        value = _utc(value)
        if value is not None and value > datetime.now(UTC) + MAX_SCHEDULE_AHEAD:
            raise ValueError("Must be within a year from now")
        return value

    @field_validator("validUntil")
    @classmethod
    def _valid_until(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        value = _utc(value)
        if value is None:
            return value
        if value <= datetime.now(UTC):
            raise ValueError("Must be in the future")
        scheduled = info.data.get("scheduledAt")
        if scheduled is not None and value <= scheduled:
            raise ValueError("Must be after scheduledAt")
        return value


class PauseRequest(Body):
    """`POST /instance/{name}/pause`: hold the instance's messages until resumed or `until`."""

    until: datetime | None = Field(None, description="ISO 8601; the pause lifts itself then")
    reason: str | None = Field(None, max_length=500)

    @field_validator("until")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        value = _utc(value)
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("Must be in the future")
        if value is not None and value > datetime.now(UTC) + MAX_SCHEDULE_AHEAD:
            raise ValueError("Must be within a year from now")
        return value


class SendCommon(SendOptions):
    """A send through a named instance."""

    instanceName: str = Field(max_length=200)


class TextContent(Body):
    text: str = Field(min_length=1, max_length=4096, description="Supports spintax.")

    _text = field_validator("text")(_spintax)


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
    clientId: str = Field(pattern=rf"^{_PART}$")


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


class PairingCodeRequest(Body):
    phoneNumber: PhoneNumber


class SandboxInbound(Body):
    sender: PhoneNumber = Field(alias="from")
    text: str = Field(min_length=1, max_length=4096)
    pushName: str | None = Field(None, max_length=200)


class TemplateSyncRequest(Body):
    instanceName: str = Field(max_length=200)


class TemplateQuery(Body):
    """`GET /whatsapp/templates` filters (query string); deleted templates only by status."""

    instance_id: str | None = Field(None, max_length=200, description="An instanceName")
    status: str | None = Field(
        None,
        pattern=r"^[A-Za-z_]{1,40}$",
        description="APPROVED, PENDING, REJECTED, PAUSED, DISABLED, IN_APPEAL, DELETED, ...",
    )
    language: str | None = Field(None, pattern=r"^[A-Za-z_]{2,20}$", description="e.g. pt_BR")
    limit: int = Field(1000, ge=1, le=1000)
    cursor: str | None = Field(
        None, min_length=1, max_length=4000, description="`pagination.next` of the previous page"
    )

    @field_validator("status")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None


class HeaderMedia(Body):
    """The media of a template's IMAGE, VIDEO or DOCUMENT header."""

    type: Literal["image", "video", "document"] | None = None
    url: AnyHttpUrl
    filename: str | None = Field(None, min_length=1, max_length=240)


class TemplateButtonParameter(Body):
    """The parameter of one template button: `payload` (quick reply) or `text` (URL suffix)."""

    index: int = Field(ge=0, le=9, description="The button's position in the template")
    payload: str | None = Field(None, min_length=1, max_length=256)
    text: str | None = Field(None, min_length=1, max_length=2000)


Variable = Annotated[str, Field(min_length=1, max_length=1024)]


class TemplateMessage(SendCommon):
    """`POST /message/template`: `templateId`, or `name` and `language`, of an APPROVED template."""

    templateId: str | None = Field(None, min_length=1, max_length=100)
    name: str | None = Field(None, min_length=1, max_length=512)
    language: str | None = Field(None, pattern=r"^[A-Za-z_]{2,20}$")
    variables: list[Variable] | dict[str, Variable] = Field(
        default_factory=list,
        description="In the order of {{1}}, {{2}}, ...; or by name for named templates",
    )
    headerMedia: HeaderMedia | None = None
    buttons: list[TemplateButtonParameter] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _which_template(self) -> "TemplateMessage":
        if self.templateId is None and (self.name is None or self.language is None):
            raise ValueError("Give templateId, or name and language")
        if self.templateId is not None and (self.name is not None or self.language is not None):
            raise ValueError("Give templateId or name and language, not both")
        return self


# Answers: documented in the OpenAPI document, built by the handlers as plain dicts.


class TenantCreated(BaseModel):
    id: str
    name: str
    apiKey: str = Field(description="Shown once; only its hash is stored.")


class TenantView(BaseModel):
    id: str
    name: str
    disabled: bool
    createdAt: str | None
    maxInstances: int | None = Field(None, description="null: the gateway's default")
    maxMessagesPerDay: int | None = Field(None, description="null: the gateway's default")
    defaultCountry: str | None = None


class KeyCreated(BaseModel):
    id: str
    apiKey: str = Field(description="Shown once; only its hash is stored.")
    scopes: list[str] | None
    rateLimitPerMinute: int | None
    name: str | None


class KeyView(BaseModel):
    id: str
    name: str | None
    scopes: list[str] | None
    rateLimitPerMinute: int | None
    createdAt: str | None
    revokedAt: str | None
    lastUsedAt: str | None


class InstanceCreated(BaseModel):
    instanceName: str
    status: Literal["close", "connecting", "open"] = Field(
        description="A cloud_api number is checked with Meta at once: open when Meta accepted "
        "its credentials in time, connecting while the check goes on, close when refused "
        "(see lastError on its status)"
    )


class LaneView(BaseModel):
    delayMs: tuple[int, int]
    perHour: int | None
    perDay: int | None


class PauseView(BaseModel):
    reason: str
    since: str | None
    until: str | None = Field(description="null: until resumed")
    by: Literal["provider", "tenant"] = Field(
        description="provider: a ban, lifted when the number connects again or by a resume"
    )


class PauseState(BaseModel):
    instanceName: str
    pause: PauseView | None


class LastError(BaseModel):
    code: str
    message: str
    at: str | None


class TemplateSyncOutcome(BaseModel):
    result: str | None = Field(description="ok, error or throttled")
    error: str | None
    since: str | None = Field(description="When the last sync first had this outcome")


class InstanceSettings(BaseModel):
    """An instance's own settings as stored; its secrets are never shown."""

    provider: str
    displayName: str | None
    isPrimary: bool
    lanes: dict[str, LaneView] = Field(description="Each lane's settings, defaults filled in")
    timezone: str
    warmup: dict[str, Any] | None
    throughput: dict[str, Any] | None = Field(description="cloud_api pacing; null for others")
    webhookUrl: str | None
    webhookEvents: list[str] | None = Field(description="null: every event")
    webhookEnabled: bool
    webhookDisabledReason: str | None
    webhookDisabledAt: str | None
    pause: PauseView | None
    templateSync: TemplateSyncOutcome | None
    lastError: LastError | None = Field(
        description="Why the provider, or the guard on tenant-given addresses, last refused this "
        "instance; cleared when its session opens"
    )
    defaultCountry: str | None = Field(
        description="Where numbers written without a country code are read; null: the tenant's"
    )


class InstanceStatus(InstanceSettings):
    instanceName: str
    state: Literal["close", "connecting", "open"]
    phoneNumber: str | None
    connectedAt: str | None
    messagesQueuedCount: int


class InstanceView(InstanceSettings):
    instanceName: str
    clientId: str
    state: Literal["close", "connecting", "open"]
    phoneNumber: str | None
    connectedAt: str | None
    createdAt: str | None
    supportsTemplates: bool
    supportsButtons: bool
    hasWindowRestriction: bool
    supportsAttachments: bool


class InstanceDevice(BaseModel):
    device: str | None
    platform: str | None


class InstanceDeleted(BaseModel):
    instanceName: str
    deleted: bool
    canceled: int
    loggedOut: bool = Field(description="false when the provider could not be reached to unlink")


class QueueCounts(BaseModel):
    urgent: int
    normal: int
    bulk: int
    total: int


class Flushed(BaseModel):
    instanceName: str
    flushed: int


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


class BulkSend(Body):
    """`POST /message/bulk`: each item is a send body plus `type` (default `text`)."""

    messages: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class BulkAccepted(BaseModel):
    accepted: int
    messages: list[Accepted]


class RoutedAccepted(Accepted):
    instanceName: str


class InstanceStats(BaseModel):
    instanceName: str
    queue: QueueCounts
    messages: dict[str, int] = Field(description="sent, failed and pending counts")


class StatsTotals(BaseModel):
    queued: int
    sent: int
    failed: int


class Stats(BaseModel):
    instances: int
    totals: StatsTotals
    perInstance: list[InstanceStats]


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


class MessageChanged(BaseModel):
    """The answer of approve, reject and cancel."""

    id: str
    status: Literal["pending", "rejected", "canceled"]


class SandboxBan(Body):
    """The simulated provider's ban signal."""

    reason: str = Field("banned by the provider (simulated)", min_length=1, max_length=500)
    seconds: float | None = Field(
        None, gt=0, le=86_400, description="The pause lifts by itself after this long"
    )


class SandboxFault(Body):
    """A simulated provider outage: for `seconds`, every send fails the way `kind` says."""

    kind: Literal["error", "timeout"] = Field(
        description="error: refused with a retryable error; timeout: the phone gets the "
        "message but the answer is lost, as in a timeout after the provider took it"
    )
    seconds: float = Field(gt=0, le=3600)


class ListedMessage(MessageView):
    """A message in a listing: the same fields as `GET /message/{id}`."""


class PageMeta(BaseModel):
    total: int
    page: int
    limit: int
    pages: int


class CursorPage(BaseModel):
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class MessageList(BaseModel):
    data: list[ListedMessage]
    meta: PageMeta
    pagination: CursorPage


class ContactMessages(BaseModel):
    messages: list[ListedMessage]
    pagination: CursorPage


class ContactView(BaseModel):
    id: str
    identifier: str
    type: str
    name: str | None
    tags: list[str]
    active: bool
    inactiveReason: str | None
    createdAt: str | None
    updatedAt: str | None


class ContactList(BaseModel):
    contacts: list[ContactView]
    meta: PageMeta
    pagination: CursorPage


class ContactDeleted(BaseModel):
    id: str
    deleted: bool


class QrCode(BaseModel):
    qrcode: str = Field(description="data:image/png;base64,...")


class PairingCode(BaseModel):
    pairingCode: str


class SessionView(BaseModel):
    instanceName: str
    state: Literal["close", "connecting", "open"]
    phoneNumber: str | None
    providerStatus: str | None


class LaneNow(BaseModel):
    delayMs: list[int]
    perHour: int | None
    perDay: int | None = Field(description="Today's day cap, lowered by warm-up while young")
    usedLastHour: int
    usedToday: int


class LaneUsage(BaseModel):
    instanceName: str
    timezone: str
    pacing: Literal["anti-ban", "throughput"]
    lanes: dict[str, LaneNow]


class SandboxAccepted(BaseModel):
    instanceName: str
    state: str | None = None
    accepted: bool | None = None


class Health(BaseModel):
    status: Literal["ok"]
    tenants: int
    instances: int
    queuedMessages: int
    uptime: int


class TemplateView(BaseModel):
    id: str = Field(description="Use as templateId when sending")
    meta_template_id: str
    name: str
    language: str
    category: str | None = Field(description="MARKETING, UTILITY or AUTHENTICATION")
    status: str = Field(description="APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...")
    whatsapp_instance_id: str = Field(description="The instanceName")
    variables: list[str] = Field(description="The body's variables: 1, 2, ... or names")
    components: list[dict[str, Any]]
    quality_rating: str | None
    synced_at: str | None
    deleted: bool = Field(description="true once Meta no longer lists it")


class TemplateList(BaseModel):
    success: Literal[True]
    data: list[TemplateView]
    pagination: CursorPage


class TemplateOne(BaseModel):
    success: Literal[True]
    data: TemplateView


class TemplatesSynced(BaseModel):
    synced_count: int
    templates: list[TemplateView]


class WhatsAppInstance(BaseModel):
    id: str = Field(description="The instanceName; use as instance_id")
    provider: str
    display_name: str | None
    phone_number: str | None
    is_primary: bool
    status: Literal["connected", "connecting", "disconnected"]
    supports_templates: bool
    supports_buttons: bool
    has_window_restriction: bool


class WhatsAppInstances(BaseModel):
    success: Literal[True]
    data: list[WhatsAppInstance]


class Issue(BaseModel):
    path: list[str | int]
    message: str
    code: str | None = Field(None, description="invalid_phone_number, where one applies")


class ValidationErrorBody(BaseModel):
    error: Literal["Validation error"]
    issues: list[Issue]


class ErrorBody(BaseModel):
    error: str
    code: str


# Webhook payloads: what tenants receive (documented in the OpenAPI `webhooks` section).


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


WEBHOOKS: dict[str, type[BaseModel]] = {
    "instance.connected": InstanceConnectedWebhook,
    "instance.disconnected": InstanceDisconnectedWebhook,
    "instance.paused": InstancePausedWebhook,
    "instance.resumed": InstanceResumedWebhook,
    "message.status": MessageStatusWebhook,
    "message.received": MessageReceivedWebhook,
    "template.status": TemplateStatusWebhook,
}


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
