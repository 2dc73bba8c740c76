"""The WhatsSync Chat API's bodies and answers (`/api/v1/messages`, `/api/v1/contacts`), as its
clients send and read them."""

from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, Field, model_validator

from ingress_api.schemas.base import CURSOR_HELP, Body, CursorPage, PhoneNumber
from ingress_api.schemas.messages import LocationContent

SendKind = Literal["text", "image", "document", "location", "template"]


class SyncImage(Body):
    url: AnyHttpUrl
    caption: str | None = Field(None, max_length=1024)


class SyncDocument(Body):
    url: AnyHttpUrl
    filename: str | None = Field(None, min_length=1, max_length=240)
    caption: str | None = Field(None, max_length=1024)


class SyncLanguage(Body):
    code: str = Field(pattern=r"^[A-Za-z_]{2,20}$", description="e.g. en_US")
    policy: Literal["deterministic"] | None = None


class TextParameter(Body):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=1024)


class Currency(Body):
    fallback_value: str = Field(min_length=1, max_length=200)
    code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")
    amount_1000: int


class CurrencyParameter(Body):
    type: Literal["currency"]
    currency: Currency


class DateTime(Body):
    fallback_value: str = Field(min_length=1, max_length=200)


class DateTimeParameter(Body):
    type: Literal["date_time"]
    date_time: DateTime


BodyParameter = Annotated[
    TextParameter | CurrencyParameter | DateTimeParameter, Field(discriminator="type")
]


class BodyComponent(Body):
    type: Literal["body"]
    parameters: list[BodyParameter] = Field(default_factory=list, max_length=100)


class HeaderComponent(Body):
    """A header's parameters, passed to the Cloud API as given."""

    type: Literal["header"]
    parameters: list[dict[str, Any]] = Field(min_length=1, max_length=1)


class ButtonComponent(Body):
    """A button's parameters, passed to the Cloud API as given."""

    type: Literal["button"]
    sub_type: Literal["quick_reply", "url"]
    index: str = Field(pattern=r"^[0-9]$", coerce_numbers_to_str=True)
    parameters: list[dict[str, Any]] = Field(min_length=1, max_length=1)


Component = Annotated[
    BodyComponent | HeaderComponent | ButtonComponent, Field(discriminator="type")
]


class SyncTemplate(Body):
    name: str = Field(min_length=1, max_length=512)
    language: SyncLanguage
    components: list[Component] = Field(default_factory=list, max_length=12)


class SyncSend(Body):
    """`POST /api/v1/messages`: `type` names the one object (or the `text`) that is sent."""

    to: PhoneNumber
    type: SendKind
    instanceName: str | None = Field(
        None, max_length=200, description="Omit for your primary open instance"
    )
    text: str | None = Field(None, min_length=1, max_length=4096)
    image: SyncImage | None = None
    document: SyncDocument | None = None
    location: LocationContent | None = None
    template: SyncTemplate | None = None

    @model_validator(mode="after")
    def _one_content(self) -> "SyncSend":
        given = [
            k for k in ("text", "image", "document", "location", "template") if getattr(self, k)
        ]
        if self.type not in given:
            raise ValueError(f"type {self.type} needs the {self.type} field")
        others = [k for k in given if k != self.type]
        if others:
            raise ValueError(f"type {self.type} takes no {', '.join(others)}")
        return self


class SyncSent(BaseModel):
    id: str
    status: str = Field(description="pending, or pending_approval")
    to: str = Field(description="+ and the E.164 digits")
    type: SendKind
    instanceName: str
    timestamp: str


class SyncPageQuery(Body):
    cursor: str | None = Field(None, min_length=1, max_length=300, description=CURSOR_HELP)
    limit: int = Field(50, ge=1, le=250)


class SyncMessagesQuery(SyncPageQuery):
    instanceName: str | None = Field(None, max_length=200)


class SyncContact(BaseModel):
    id: str
    phone: str = Field(description="+ and the E.164 digits")
    name: str | None
    lastMessageAt: str | None


class SyncContactDetail(SyncContact):
    profileImage: str | None = Field(description="Always null: the gateway keeps no pictures")
    tags: list[str]


class SyncContacts(BaseModel):
    contacts: list[SyncContact]
    pagination: CursorPage


class SyncMessage(BaseModel):
    id: str
    from_: str | None = Field(alias="from")
    to: str | None
    type: str
    text: str | None
    timestamp: str
    status: str = Field(description="pending, sent, delivered, read, failed, ... or received")
    direction: Literal["inbound", "outbound"]


class SyncMessages(BaseModel):
    messages: list[SyncMessage]
    pagination: CursorPage


class SyncErrorDetail(BaseModel):
    code: str = Field(description="invalid_phone_number, validation_error, not_found, ...")
    message: str
    status: int
    details: list[dict[str, Any]] | None = Field(None, description="Each bad field, if any")


class SyncError(BaseModel):
    error: SyncErrorDetail
