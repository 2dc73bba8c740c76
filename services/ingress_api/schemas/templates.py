"""WhatsApp template bodies and answers: listing, syncing and sending a template."""

from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from ingress_api.schemas.base import Body, CursorPage
from ingress_api.schemas.messages import SendCommon


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
