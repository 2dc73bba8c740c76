"""Account API bodies and answers: plans and their limits, a tenant's account and own keys."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from ingress_api.accounts.users import Role
from ingress_api.schemas.admin import (
    MaxAttachmentBytes,
    MaxBulkSize,
    MaxMessagesPerMonth,
    OtpMaxLiveCodes,
    OtpSendsPerHour,
    RequestsPerMinute,
    Scope,
)
from ingress_api.schemas.base import TENANT_ID, Body

MaxInstances = Annotated[int | None, Field(None, ge=0, le=1_000_000)]
MaxMessagesPerDay = Annotated[
    int | None, Field(None, ge=0, le=1_000_000_000, description="Messages accepted per UTC day")
]


class PlanCreate(Body):
    id: str = Field(pattern=TENANT_ID)
    name: str = Field(min_length=1, max_length=200)
    maxInstances: MaxInstances = None
    maxMessagesPerDay: MaxMessagesPerDay = None
    requestsPerMinute: RequestsPerMinute = None
    maxBulkSize: MaxBulkSize = None
    maxMessagesPerMonth: MaxMessagesPerMonth = None
    maxAttachmentBytes: MaxAttachmentBytes = None
    otpSendsPerHour: OtpSendsPerHour = None
    otpMaxLiveCodes: OtpMaxLiveCodes = None


class PlanUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    maxInstances: MaxInstances = None
    maxMessagesPerDay: MaxMessagesPerDay = None
    requestsPerMinute: RequestsPerMinute = None
    maxBulkSize: MaxBulkSize = None
    maxMessagesPerMonth: MaxMessagesPerMonth = None
    maxAttachmentBytes: MaxAttachmentBytes = None
    otpSendsPerHour: OtpSendsPerHour = None
    otpMaxLiveCodes: OtpMaxLiveCodes = None


class PlanView(BaseModel):
    id: str
    name: str
    createdAt: str | None
    maxInstances: int | None = Field(None, description="null: the gateway's default")
    maxMessagesPerDay: int | None = Field(None, description="null: the gateway's default")
    requestsPerMinute: int | None = Field(None, description="null: no tenant-wide limit")
    maxBulkSize: int | None = Field(None, description="null: the gateway's default")
    maxMessagesPerMonth: int | None = Field(None, description="null: no monthly limit")
    maxAttachmentBytes: int | None = Field(None, description="null: LANEGATE_ATTACHMENT_MAX_BYTES")
    otpSendsPerHour: int | None = Field(None, description="null: 5 codes per number and hour")
    otpMaxLiveCodes: int | None = Field(None, description="null: LANEGATE_OTP_MAX_LIVE_CODES")


class PlanRef(BaseModel):
    id: str
    name: str


class AccountSettings(BaseModel):
    defaultCountry: str | None
    timezone: str = Field(description="Days and months are counted in this zone")


class AccountCounts(BaseModel):
    instances: int
    instancesByState: dict[str, int]
    instancesByProvider: dict[str, int]
    instancesByChannel: dict[str, int]
    contacts: int


class AccountView(BaseModel):
    id: str
    name: str
    createdAt: str | None
    plan: PlanRef | None
    settings: AccountSettings
    counts: AccountCounts


class Limit(BaseModel):
    limit: int | None = Field(description="null: no limit")
    used: int | None = Field(None, description="null: not counted")


class LimitsView(BaseModel):
    plan: PlanRef | None
    instances: Limit
    messagesToday: Limit
    messagesThisMonth: Limit
    requestsPerMinute: Limit
    requestsPerMinutePerKey: Limit
    bulkSize: Limit
    attachmentBytes: Limit
    otpSendsPerHourPerNumber: Limit
    otpLiveCodes: Limit


class OwnKeyCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] | None = Field(
        None, description="Omit for the scopes of the key making it; only scopes it holds."
    )
    expiresAt: AwareDatetime | None = Field(None, description="ISO 8601; 401 KEY_EXPIRED after")

    @field_validator("expiresAt")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("Must be in the future")
        return value


class OwnKeyCreated(BaseModel):
    id: str
    apiKey: str = Field(description="Shown once; only its hash is stored.")
    name: str
    prefix: str
    scopes: list[str] | None
    expiresAt: str | None


class OwnKeyView(BaseModel):
    id: str
    name: str | None
    prefix: str | None = Field(description="The key's first characters; null for older keys")
    scopes: list[str] | None
    createdAt: str | None
    lastUsedAt: str | None
    expiresAt: str | None


Password = Annotated[str, Field(min_length=12, max_length=1024)]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class UserCreate(Body):
    email: Email
    role: Role
    password: Password | None = Field(
        None, description="Omit for an invitation token the user turns into a password"
    )


class UserUpdate(Body):
    role: Role | None = None
    disabled: bool | None = None


class UserView(BaseModel):
    id: str
    email: str
    role: str
    tenantId: str
    disabled: bool
    invited: bool = Field(description="true until the invitation is accepted")
    createdAt: str | None


class UserCreated(UserView):
    invitationToken: str | None = Field(description="Shown once; POST /auth/accept takes it")


class InvitationAccept(Body):
    token: str = Field(min_length=1, max_length=200)
    password: Password


class LoginBody(BaseModel):
    # Not stripped or forbidding extras: a password is taken exactly as typed.
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=200)


class SignedInUser(BaseModel):
    id: str
    email: str
    role: str
    tenantId: str


class Tokens(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    refresh_token: str
    user: SignedInUser


class SignedOut(BaseModel):
    signedOut: bool = Field(description="false: the refresh token was not known")
