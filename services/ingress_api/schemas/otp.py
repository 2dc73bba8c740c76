"""OTP bodies and answers: sending, resending, verifying and reading a one-time code."""

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ingress_api.schemas.base import Body, PhoneNumber
from lanegate.otp import MASK, PLACEHOLDER

OtpStatus = Literal[
    "pending", "sent", "delivered", "read", "verified", "expired", "blocked", "failed"
]


class OtpTemplate(Body):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(pattern=r"^[A-Za-z_]{2,20}$", description="e.g. pt_BR")


def _without_mask(value: str | None) -> str | None:
    if value is not None and MASK in value:
        raise ValueError(f"Must not contain {MASK}: it stands for the code where it is shown")
    return value


class OtpSend(Body):
    instanceName: str = Field(max_length=200)
    to: PhoneNumber
    length: int = Field(6, ge=4, le=10, description="Digits in the code")
    ttlSeconds: int = Field(300, ge=60, le=3600, description="How long the code can be verified")
    template: OtpTemplate | None = Field(
        None, description="An AUTHENTICATION template (cloud_api instances need one)"
    )
    text: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description=f"The message, with {PLACEHOLDER} where the code goes (sandbox, waha, smtp)",
    )
    subject: str | None = Field(
        None,
        min_length=1,
        max_length=998,
        pattern=r"^[^\r\n]*$",
        description=f"The mail's subject on an email instance (one line), {PLACEHOLDER} optional",
    )
    externalId: str | None = Field(None, min_length=1, max_length=200, description="Your reference")

    @field_validator("text")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and PLACEHOLDER not in value:
            raise ValueError(f"Must contain {PLACEHOLDER} where the code goes")
        return _without_mask(value)

    @field_validator("subject")
    @classmethod
    def _subject_without_mask(cls, value: str | None) -> str | None:
        return _without_mask(value)

    @model_validator(mode="after")
    def _one_way_to_say_it(self) -> "OtpSend":
        if self.text is not None and self.template is not None:
            raise ValueError("Give text or template, not both")
        return self


class OtpVerify(Body):
    """By the OTP's `id`, or by `instanceName` and `to` (the number's latest code)."""

    id: str | None = Field(None, min_length=1, max_length=100)
    instanceName: str | None = Field(None, max_length=200)
    to: PhoneNumber | None = None
    code: str = Field(pattern=r"^[0-9]{4,10}$", description="The digits the user typed")

    @model_validator(mode="after")
    def _names_a_code(self) -> "OtpVerify":
        if self.id is None and (self.instanceName is None or self.to is None):
            raise ValueError("Give id, or instanceName and to")
        if self.id is not None and (self.instanceName is not None or self.to is not None):
            raise ValueError("Give id, or instanceName and to, not both")
        return self


class OtpSent(BaseModel):
    id: str
    status: OtpStatus
    to: str
    expiresAt: str
    attemptsLeft: int
    resendsLeft: int
    messageId: str


class OtpVerified(BaseModel):
    valid: bool
    status: OtpStatus
    attemptsLeft: int | None = None


class OtpView(BaseModel):
    id: str
    instanceName: str
    to: str
    status: OtpStatus
    attemptsLeft: int
    resendsLeft: int
    createdAt: str
    expiresAt: str
    verifiedAt: str | None
    externalId: str | None
    messageIds: list[str] = Field(description="The message carrying each send, first send first")


class OtpTemplateView(BaseModel):
    id: str
    instanceName: str
    name: str
    language: str
    status: str
    category: str


class OtpTemplates(BaseModel):
    data: list[OtpTemplateView]
