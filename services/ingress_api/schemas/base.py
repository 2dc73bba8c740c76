"""The base of request bodies, and the field types and page shapes every area shares."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from lanegate import addresses, phones

TENANT_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"

NAME_PART = r"[A-Za-z0-9][A-Za-z0-9-]{0,62}"

INSTANCE_NAME = re.compile(rf"^({NAME_PART})__({NAME_PART})__({NAME_PART})$")

Provider = Literal["sandbox", "cloud_api", "waha", "smtp"]


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
    "instance.health",
    "message.received",
    "message.status",
    "message.expired",
    "template.status",
    "otp.verified",
    "otp.blocked",
    "otp.expired",
]


class Body(BaseModel):
    """Base of request bodies: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# The validation context key of the country a number written without its country code is in.
DEFAULT_COUNTRY = "defaultCountry"


# The validation context key that leaves numbers as written, for a body whose country is not
# known yet (a routed send's number is read once its instance is picked).
NUMBERS_READ_LATER = "numbersReadLater"


# The validation context key of the instance's channel: `to` on an `email` one is an address.
CHANNEL = "channel"


def _email(value: str) -> str:
    try:
        return addresses.normalized_email(value)
    except addresses.InvalidEmail as e:
        raise PydanticCustomError(
            addresses.ISSUE_CODE,
            "{code}: {reason}",
            {"code": addresses.ISSUE_CODE, "reason": str(e)},
        ) from e


def _phone(value: str, info: ValidationInfo) -> str:
    context = info.context if isinstance(info.context, dict) else {}
    if context.get(CHANNEL) == "email":
        return _email(value)
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
        max_length=254,
        description="E.164 digits (5511999998888), or as written: +55 11 99999-8888, "
        "(011) 99999-8888 with a defaultCountry; an e-mail address on an email instance",
    ),
    AfterValidator(_phone),
]


def _contact_identifier(value: str, info: ValidationInfo) -> str:
    return _email(value) if addresses.looks_like_email(value) else _phone(value, info)


# A contact's identifier: a phone number as `PhoneNumber` reads it, or an e-mail address.
ContactIdentifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=254,
        description="A phone number (E.164 digits, or as written), or an e-mail address",
    ),
    AfterValidator(_contact_identifier),
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

CURSOR_HELP = "`pagination.next` of the previous page, for paging past what `page` reaches"

MAX_SCHEDULE_AHEAD = timedelta(days=366)


def as_utc(value: datetime | None) -> datetime | None:
    """A time in UTC; one written without an offset is read as UTC, the API's time zone."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC) if value is not None else None


class PageMeta(BaseModel):
    total: int
    page: int
    limit: int
    pages: int


class CursorPage(BaseModel):
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
