"""Lane, warm-up and throughput settings of tenants and instances, and the lanes' usage."""

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from ingress_api.schemas.base import Body


class LaneSettings(Body):
    """One lane's pacing override: the random gap window and the caps."""

    delayMs: tuple[int, int] | None = None
    perHour: int | None = Field(None, gt=0)
    perDay: int | None = Field(None, gt=0)

    @field_validator("delayMs")
    @classmethod
    def _window(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 0 <= value[0] <= value[1] <= 86_400_000:
            raise ValueError("Must be [min, max] milliseconds with 0 <= min <= max")
        return value


class LaneOverrides(Body):
    urgent: LaneSettings | None = None
    normal: LaneSettings | None = None
    bulk: LaneSettings | None = None


class WarmupSettings(Body):
    """A young number's day cap: `startPerDay` on day one, growing `growthPercent` a day."""

    startPerDay: int = Field(gt=0, le=100_000)
    growthPercent: float = Field(gt=0, le=1000)


class ThroughputSettings(Body):
    """Cloud API pacing: messages per second for the number, gap between sends to one person."""

    perSecond: int | None = Field(None, gt=0, le=1000)
    recipientGapMs: int | None = Field(None, ge=0, le=86_400_000)


class HealthSettings(Body):
    """How healthy the number must stay to keep its full day caps."""

    minScore: int = Field(
        ge=0,
        le=100,
        description="Under this health score (0-100) the normal and bulk day caps are reduced; "
        "default 40",
    )


class HealthView(BaseModel):
    minScore: int
    restricted: bool = Field(description="Whether the normal and bulk day caps are reduced now")
    since: str | None = Field(description="When `restricted` last changed")
    score: int | None = Field(description="The score when `restricted` last changed")
    dayCapFactor: float = Field(description="What reduced day caps are multiplied by")


def _timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError("Must be an IANA time zone such as America/Argentina/Buenos_Aires") from e
    return value


class PacingFields(Body):
    """Pacing settings an instance takes at creation and through `PATCH /instance/{name}`."""

    lanes: LaneOverrides | None = None
    timezone: str | None = Field(None, max_length=64, description="IANA zone of the day caps")
    warmup: WarmupSettings | None = None
    throughput: ThroughputSettings | None = None
    health: HealthSettings | None = None

    _tz = field_validator("timezone")(_timezone)


class LaneView(BaseModel):
    delayMs: tuple[int, int]
    perHour: int | None
    perDay: int | None


class LaneNow(BaseModel):
    delayMs: list[int]
    perHour: int | None
    perDay: int | None = Field(description="Today's day cap, lowered by warm-up while young")
    usedLastHour: int
    usedToday: int


class LaneUsage(BaseModel):
    instanceName: str
    timezone: str
    pacing: Literal["anti-ban", "throughput"]
    lanes: dict[str, LaneNow]
