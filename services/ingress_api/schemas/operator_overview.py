"""Operator overview queries and answers: tenants, instances, disabled webhooks, dead letters."""

from pydantic import BaseModel, Field

from ingress_api.schemas.accounts import PlanRef
from ingress_api.schemas.base import TENANT_ID, Body, PageMeta
from ingress_api.schemas.usage import UsageCounts
from lanegate.dead_letters import SERVICE_QUEUES

QUEUES_HELP = f"One of {', '.join(SERVICE_QUEUES)}"


class OverviewPage(Body):
    """A page of an operator listing (query string)."""

    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(50, ge=1, le=250)


class InstanceOverviewQuery(OverviewPage):
    tenantId: str | None = Field(None, pattern=TENANT_ID, description="Only this tenant's")


class TenantOverview(BaseModel):
    id: str
    name: str
    disabled: bool
    plan: PlanRef | None
    instances: int
    liveKeys: int
    usageToday: UsageCounts = Field(description="Counted since 00:00 UTC")
    createdAt: str | None


class TenantOverviewList(BaseModel):
    data: list[TenantOverview]
    meta: PageMeta


class PauseOverview(BaseModel):
    reason: str
    since: str | None
    until: str | None
    by: str


class WaitingPerLane(BaseModel):
    urgent: int
    normal: int
    bulk: int


class InstanceOverview(BaseModel):
    tenantId: str
    instanceName: str
    provider: str
    state: str | None
    pause: PauseOverview | None
    waiting: WaitingPerLane
    waitingTotal: int


class InstanceOverviewList(BaseModel):
    data: list[InstanceOverview]
    meta: PageMeta


class DisabledWebhook(BaseModel):
    tenantId: str
    instanceName: str
    webhookUrl: str | None
    disabledAt: str | None
    reason: str | None


class DisabledWebhookList(BaseModel):
    data: list[DisabledWebhook]
    meta: PageMeta


class DeadLetterQuery(Body):
    limit: int = Field(20, ge=0, le=200, description="Messages shown per queue")


class ReplayQuery(Body):
    limit: int | None = Field(
        None, ge=1, le=100_000, description="Put back at most this many (omit: every one)"
    )


class DeadLetter(BaseModel):
    queue: str
    id: str | None
    kind: str | None = Field(description="The event kind")
    attempts: int | None
    reason: str | None = Field(description="Why it was dead-lettered")


class DeadLetterQueue(BaseModel):
    queue: str = Field(description=QUEUES_HELP)
    count: int
    messages: list[DeadLetter] = Field(description="The first of them, oldest first")


class DeadLetterQueues(BaseModel):
    queues: list[DeadLetterQueue]


class Replayed(BaseModel):
    queue: str
    replayed: int


class Purged(BaseModel):
    queue: str
    purged: int
