"""Operator API bodies and answers: tenants and their API keys."""

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
)

from ingress_api.schemas.base import TENANT_ID, Body, DefaultCountry

RequestsPerMinute = Annotated[
    int | None,
    Field(None, ge=1, le=1_000_000, description="Requests per minute of all the tenant's keys"),
]
MaxBulkSize = Annotated[
    int | None, Field(None, ge=1, le=1000, description="Messages one bulk send may hold")
]
MaxMessagesPerMonth = Annotated[
    int | None,
    Field(None, ge=0, le=100_000_000_000, description="Messages accepted per UTC calendar month"),
]
MaxAttachmentBytes = Annotated[
    int | None,
    Field(
        None,
        ge=1024,
        le=10 * 1024**3,
        description="Bytes one attached file may hold (never above LANEGATE_ATTACHMENT_MAX_BYTES)",
    ),
]
OtpSendsPerHour = Annotated[
    int | None, Field(None, ge=1, le=100, description="Codes one number may take in any hour")
]
OtpMaxLiveCodes = Annotated[
    int | None,
    Field(None, ge=1, le=10_000_000, description="Codes the tenant may have waiting at once"),
]


class PlanOverrides(Body):
    """A tenant's plan, and the limits it has of its own (omit, or null, for the plan's)."""

    planId: str | None = Field(None, description="Its limits apply where the tenant sets none")
    requestsPerMinute: RequestsPerMinute = None
    maxBulkSize: MaxBulkSize = None
    maxMessagesPerMonth: MaxMessagesPerMonth = None
    maxAttachmentBytes: MaxAttachmentBytes = None
    otpSendsPerHour: OtpSendsPerHour = None
    otpMaxLiveCodes: OtpMaxLiveCodes = None


class TenantCreate(PlanOverrides):
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


Scope = Literal[
    "instances:read",
    "instances:write",
    "messages:read",
    "messages:write",
    "templates:read",
    "templates:sync",
    "contacts:read",
    "contacts:write",
    "otp:read",
    "otp:write",
    "account:read",
    "keys:read",
    "keys:write",
    "users:read",
    "users:write",
    "whatsapp:read",
    "whatsapp:write",
]


class TenantUpdate(PlanOverrides):
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
    planId: str | None = None
    requestsPerMinute: int | None = Field(None, description="null: the plan's")
    maxBulkSize: int | None = Field(None, description="null: the plan's")
    maxMessagesPerMonth: int | None = Field(None, description="null: the plan's")
    maxAttachmentBytes: int | None = Field(None, description="null: the plan's")
    otpSendsPerHour: int | None = Field(None, description="null: the plan's")
    otpMaxLiveCodes: int | None = Field(None, description="null: the plan's")


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
