"""`GET /account/usage`: its query and its answer."""

from typing import Literal

from pydantic import BaseModel, Field

from ingress_api.schemas.base import Body

DAY_HELP = "A UTC day, YYYY-MM-DD"


class UsageQuery(Body):
    """`GET /account/usage` filters (query string)."""

    from_: str | None = Field(
        None, alias="from", max_length=10, description=f"{DAY_HELP}; default: see `to`"
    )
    to: str | None = Field(
        None,
        max_length=10,
        description=f"{DAY_HELP}, included; default today. With neither, the last 30 days "
        "(day) or the last 12 months (month)",
    )
    granularity: Literal["day", "month"] = "day"
    instanceName: str | None = Field(None, max_length=200, description="Only this instance")


class UsageCounts(BaseModel):
    """What happened in a period."""

    accepted: int = Field(description="Messages accepted")
    sent: int = Field(description="Messages the provider took")
    delivered: int = Field(description="Delivery receipts")
    read: int = Field(description="Read receipts")
    failed: int = Field(description="Messages failed (at the send, or undelivered after it)")
    canceled: int = Field(description="Messages canceled before they went")
    webhooksDelivered: int = Field(description="Webhook deliveries the endpoint took (2xx)")
    webhooksFailed: int = Field(description="Webhook deliveries given up (dead)")
    otpSent: int = Field(description="One-time codes sent (resends included)")
    otpVerified: int = Field(description="One-time codes verified")


class UsagePeriod(BaseModel):
    period: str = Field(description="YYYY-MM-DD (day) or YYYY-MM (month)")
    from_: str = Field(alias="from", description="Its first day within the range asked")
    to: str = Field(description="Its last day within the range asked")
    totals: UsageCounts
    byChannel: dict[str, UsageCounts] = Field(
        description="By the channel of the instance's provider (whatsapp, email)"
    )
    byInstance: dict[str, UsageCounts]


class UsageView(BaseModel):
    from_: str = Field(alias="from")
    to: str
    granularity: Literal["day", "month"]
    instanceName: str | None
    totals: UsageCounts
    periods: list[UsagePeriod] = Field(description="Every period of the range, oldest first")
