"""Anti-ban lanes: their order and default pacing, and an instance's whole pacing."""

import random
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lanegate.events import Lane

LANES: tuple[Lane, ...] = ("urgent", "normal", "bulk")
RANK: dict[str, int] = {lane: rank for rank, lane in enumerate(LANES)}
UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class LanePolicy:
    """How one lane paces an instance: a random gap between sends and optional caps."""

    min_delay: float
    max_delay: float
    per_hour: int | None
    per_day: int | None

    def sample_delay(self, rng: random.Random) -> float:
        """A gap in seconds drawn uniformly from the lane's window."""
        return rng.uniform(self.min_delay, self.max_delay)


DEFAULT_POLICIES: dict[str, LanePolicy] = {
    "urgent": LanePolicy(1.0, 2.0, None, None),
    "normal": LanePolicy(3.0, 8.0, 80, 500),
    "bulk": LanePolicy(8.0, 15.0, 30, 200),
}


def policies_for(instance: dict[str, Any]) -> dict[str, LanePolicy]:
    """An instance's lane policies: the defaults with its `lanes` overrides applied."""
    overrides = instance.get("lanes") or {}
    result = dict(DEFAULT_POLICIES)
    if isinstance(overrides, dict):
        for lane, spec in overrides.items():
            if lane in result and isinstance(spec, dict):
                base = result[lane]
                low, high = spec.get("delayMs", (base.min_delay * 1000, base.max_delay * 1000))
                result[lane] = LanePolicy(
                    low / 1000,
                    high / 1000,
                    spec.get("perHour", base.per_hour),
                    spec.get("perDay", base.per_day),
                )
    return result


@dataclass(frozen=True)
class Warmup:
    """A young number's day cap: `start` on its first day, growing `growth_percent` a day."""

    start_per_day: int
    growth_percent: float

    def day_cap(self, days: int) -> int:
        """The warm-up day cap on day `days` (0 = the day the instance first connected)."""
        # Past ~60 days of growth every realistic lane cap is reached; the bound keeps it finite.
        grown = self.start_per_day * (1 + self.growth_percent / 100) ** min(max(days, 0), 400)
        return int(min(grown, 2**31))


@dataclass(frozen=True)
class Throughput:
    """Cloud API pacing: a per-number send rate and a minimum gap per recipient."""

    per_second: float = 80.0
    recipient_gap: float = 6.0


@dataclass(frozen=True)
class Pacing:
    """Everything that paces one instance: lanes, its calendar, warm-up, Cloud API throughput."""

    lanes: dict[str, LanePolicy]
    timezone: ZoneInfo = UTC
    warmup: Warmup | None = None
    throughput: Throughput | None = None  # set for cloud_api: no anti-ban delays or caps

    def day_cap(self, lane: str, days_connected: int) -> int | None:
        """A lane's day cap today: the lane's own, lowered by warm-up while the number is young."""
        cap = self.lanes[lane].per_day
        if cap is None or self.warmup is None:
            return cap
        return min(cap, self.warmup.day_cap(days_connected))


DEFAULT_PACING = Pacing(lanes=DEFAULT_POLICIES)
# A Cloud API number's `throughput` settings when its tenant set none.
THROUGHPUT_DEFAULTS = {"perSecond": 80, "recipientGapMs": 6000}


def pacing_for(instance: dict[str, Any]) -> Pacing:
    """An instance's pacing from its stored settings (lanes, timezone, warmup, throughput)."""
    warmup = instance.get("warmup")
    throughput = None
    if instance.get("provider") == "cloud_api":
        spec = THROUGHPUT_DEFAULTS | (instance.get("throughput") or {})
        throughput = Throughput(
            per_second=float(spec["perSecond"]), recipient_gap=spec["recipientGapMs"] / 1000
        )
    try:
        timezone = ZoneInfo(instance.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        timezone = UTC  # validated at the API; an unknown zone here means old data
    return Pacing(
        lanes=policies_for(instance),
        timezone=timezone,
        warmup=Warmup(int(warmup["startPerDay"]), float(warmup["growthPercent"]))
        if isinstance(warmup, dict)
        else None,
        throughput=throughput,
    )
