"""Queue counts, flushes, stats and health."""

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)


class QueueCounts(BaseModel):
    urgent: int
    normal: int
    bulk: int
    total: int


class Flushed(BaseModel):
    instanceName: str
    flushed: int


class InstanceStats(BaseModel):
    instanceName: str
    queue: QueueCounts
    messages: dict[str, int] = Field(description="sent, failed and pending counts")


class StatsTotals(BaseModel):
    queued: int
    sent: int
    failed: int


class Stats(BaseModel):
    instances: int
    totals: StatsTotals
    perInstance: list[InstanceStats]


class Health(BaseModel):
    status: Literal["ok"]
    tenants: int
    instances: int
    queuedMessages: int
    uptime: int
