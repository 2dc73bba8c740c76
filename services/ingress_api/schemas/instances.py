"""Instance bodies and answers: create, update, status, device, delete and pause."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
)

from ingress_api.schemas.base import (
    DEFAULT_COUNTRY,
    MAX_SCHEDULE_AHEAD,
    Body,
    DefaultCountry,
    PhoneNumber,
    Provider,
    WebhookEventName,
    WebhookUrl,
    as_utc,
    parse_instance_name,
)
from ingress_api.schemas.pacing import HealthView, LaneView, PacingFields
from lanegate import addresses, signing


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


def _address(value: str) -> str:
    try:
        return addresses.normalized_email(value)
    except addresses.InvalidEmail as e:
        raise ValueError(f"{addresses.ISSUE_CODE}: {e}") from e


EmailAddress = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_address)]


class SmtpConfig(Body):
    """An e-mail sender through an SMTP relay; the password is stored, never shown again."""

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\[\]-]+$")
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="none only for a loopback relay with LANEGATE_ENV=development"
    )
    username: str | None = Field(None, min_length=1, max_length=256)
    password: SecretStr | None = Field(None, min_length=1, max_length=1024)
    fromAddress: EmailAddress
    fromName: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\r\n]*$")
    replyTo: EmailAddress | None = None
    defaultSubject: str | None = Field(None, min_length=1, max_length=998, pattern=r"^[^\r\n]*$")
    listUnsubscribe: str | None = Field(
        None,
        pattern=r"^(mailto:|https://)[^\s<>]{1,500}$",
        description="mailto: or https URL for the List-Unsubscribe header",
    )


PROVIDER_CONFIGS: dict[str, type[Body]] = {
    "sandbox": SandboxConfig,
    "cloud_api": CloudApiConfig,
    "waha": WahaConfig,
    "smtp": SmtpConfig,
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


class InstanceCreate(PacingFields):
    instanceName: str = Field(max_length=200)
    webhookUrl: WebhookUrl
    webhookSecret: WebhookSecret
    provider: Provider = "sandbox"
    providerConfig: dict[str, Any] | None = Field(
        None, description="SandboxConfig, CloudApiConfig, WahaConfig or SmtpConfig, by provider"
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


class PauseRequest(Body):
    """`POST /instance/{name}/pause`: hold the instance's messages until resumed or `until`."""

    until: datetime | None = Field(None, description="ISO 8601; the pause lifts itself then")
    reason: str | None = Field(None, max_length=500)

    @field_validator("until")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        value = as_utc(value)
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("Must be in the future")
        if value is not None and value > datetime.now(UTC) + MAX_SCHEDULE_AHEAD:
            raise ValueError("Must be within a year from now")
        return value


class InstanceCreated(BaseModel):
    instanceName: str
    status: Literal["close", "connecting", "open"] = Field(
        description="A cloud_api number is checked with Meta at once: open when Meta accepted "
        "its credentials in time, connecting while the check goes on, close when refused "
        "(see lastError on its status)"
    )


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
    channel: Literal["whatsapp", "email"] = Field(description="email for smtp instances")
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
    health: HealthView


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


class InstanceQuery(BaseModel):
    """Instance listing filters (query string)."""

    channel: Literal["whatsapp", "email"] | None = Field(None, description="Only this channel")


class InstanceDevice(BaseModel):
    device: str | None
    platform: str | None


class InstanceDeleted(BaseModel):
    instanceName: str
    deleted: bool
    canceled: int
    loggedOut: bool = Field(description="false when the provider could not be reached to unlink")
