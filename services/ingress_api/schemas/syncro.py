"""The Syncro CRM API's WhatsApp bodies and answers (`/api/v1/whatsapp/...`,
`/api/v1/leads/{id}/send-whatsapp...`), as its clients send and read them."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from ingress_api.schemas.base import Body

NumberId = Annotated[int, Field(ge=1, le=2**53, description="An id of the listings")]


class SyncroTemplateQuery(Body):
    instance_id: NumberId | None = None
    status: str | None = Field(
        None,
        pattern=r"^[A-Za-z_]{1,40}$",
        description="APPROVED, PENDING, REJECTED, PAUSED, DISABLED",
    )
    language: str | None = Field(None, pattern=r"^[A-Za-z_]{2,20}$", description="e.g. pt_BR")

    @field_validator("status")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None


class SyncroTemplateSend(Body):
    """`POST /api/v1/leads/{id}/send-whatsapp-template`."""

    instance_id: NumberId | None = Field(None, description="Omit for your primary open number")
    template_id: NumberId
    variables: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list, max_length=100, description="In the order of {{1}}, {{2}}, ..."
    )


class SyncroTextSend(Body):
    """`POST /api/v1/leads/{id}/send-whatsapp`."""

    instance_id: NumberId | None = Field(None, description="Omit for your primary open number")
    message: str = Field(min_length=1, max_length=4096, description="Supports spintax.")


class SyncroInstance(BaseModel):
    id: int = Field(description="Use as instance_id when sending messages")
    provider: str = Field(description="waha, cloud_api or sandbox")
    display_name: str | None
    phone_number: str | None = Field(description="+ and the E.164 digits; null until connected")
    is_primary: bool
    status: Literal["connected", "connecting", "disconnected"]
    supports_templates: bool
    supports_buttons: bool
    has_window_restriction: bool


class SyncroInstances(BaseModel):
    success: Literal[True]
    data: list[SyncroInstance]


class SyncroTemplate(BaseModel):
    id: int = Field(description="Use as template_id when sending")
    name: str
    language: str
    category: str | None
    status: str
    whatsapp_instance_id: int
    variables: list[str]
    components: list[dict[str, Any]]
    quality_rating: str | None


class SyncroTemplates(BaseModel):
    success: Literal[True]
    data: list[SyncroTemplate]


class SyncroSent(BaseModel):
    message_id: str
    status: str = Field(description="pending, or pending_approval")
    lead_id: str
    instance_id: int
    to: str = Field(description="+ and the E.164 digits")


class SyncroSendAnswer(BaseModel):
    success: Literal[True]
    data: SyncroSent


class SyncroIssue(BaseModel):
    path: list[str | int]
    message: str
    code: str | None = None


class SyncroError(BaseModel):
    success: Literal[False]
    error: str
    code: str
    issues: list[SyncroIssue] | None = None
