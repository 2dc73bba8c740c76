"""Anti-ban lanes: their order and default pacing, an instance's whole pacing, and its cap usage."""

import random
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lanegate.events import Lane
from lanegate.providers.capabilities import channel_of

LANES: tuple[Lane, ...] = ("urgent", "normal", "bulk")
RANK: dict[str, int] = {lane: rank for rank, lane in enumerate(LANES)}
UTC = ZoneInfo("UTC")
HOUR = 3600.0


def local_date(at: float, tz: ZoneInfo) -> date:
    """The calendar date at `at` (Unix seconds) in time zone `tz`."""
    return datetime.fromtimestamp(at, tz).date()


def next_midnight(at: float, tz: ZoneInfo) -> float:
    """When the calendar day containing `at` ends in `tz` (DST-aware)."""
    tomorrow = local_date(at, tz) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=tz).timestamp()


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


# A relay paces by reputation, not by a phone's ban risk: shorter gaps, higher caps.
EMAIL_POLICIES: dict[str, LanePolicy] = {
    "urgent": LanePolicy(0.0, 0.2, None, None),
    "normal": LanePolicy(0.5, 1.0, 1000, None),
    "bulk": LanePolicy(1.0, 2.0, 500, 2000),
}


# While a number's health score is under its `health.minScore`, these lanes' day caps are
# multiplied by this factor (at least one send a day stays allowed); urgent is never capped.
RESTRICTED_LANES: tuple[Lane, ...] = ("normal", "bulk")
RESTRICTED_DAY_CAP_FACTOR = 0.5


def health_restricted(instance: dict[str, Any]) -> bool:
    """Whether the instance's stored health flag says its day caps are reduced."""
    stored = instance.get("health")
    return isinstance(stored, dict) and stored.get("restricted") is True


def policies_for(instance: dict[str, Any]) -> dict[str, LanePolicy]:
    """An instance's lane policies: its channel's defaults with its `lanes` overrides applied,
    and its normal and bulk day caps reduced while its health score is too low."""
    overrides = instance.get("lanes") or {}
    email = channel_of(str(instance.get("provider", ""))) == "email"
    result = dict(EMAIL_POLICIES if email else DEFAULT_POLICIES)
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
    if health_restricted(instance):
        for lane in RESTRICTED_LANES:
            policy = result[lane]
            if policy.per_day is not None:
                reduced = max(1, int(policy.per_day * RESTRICTED_DAY_CAP_FACTOR))
                result[lane] = replace(policy, per_day=reduced)
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

    def days_connected(self, first_connected_at: float | None, now: float) -> int:
        """Calendar days from the instance's first connection to `now` in its time zone (0 on
        that day, and before it ever connected)."""
        if first_connected_at is None:
            return 0
        tz = self.timezone
        return (local_date(now, tz) - local_date(first_connected_at, tz)).days

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


# Caps count dispatches (a message handed to the sender), so a message that later fails still
# used its slot: a cap is never exceeded, even by a send whose outcome is unknown.
@dataclass(slots=True)
class Usage:
    """Dispatch times of the last hour and counts of the current local day, per lane."""

    hour: dict[str, deque[float]] = field(default_factory=dict)
    day: str = ""
    day_counts: dict[str, int] = field(default_factory=dict)

    def reopens_at(
        self, lane: str, policy: LanePolicy, day_cap: int | None, now: float, tz: ZoneInfo
    ) -> float | None:
        """None when `lane` is under its caps at `now`; else when its tightest cap lets one go."""
        reopen: float | None = None
        if policy.per_hour is not None:
            times = self.hour.get(lane)
            if times:
                while times and times[0] <= now - HOUR:
                    times.popleft()
                if len(times) >= policy.per_hour:
                    reopen = times[len(times) - policy.per_hour] + HOUR
        if (
            day_cap is not None
            and self.day == local_date(now, tz).isoformat()
            and self.day_counts.get(lane, 0) >= day_cap
        ):
            reopen = max(reopen or 0.0, next_midnight(now, tz))
        return reopen

    def record(self, lane: str, policy: LanePolicy, now: float, tz: ZoneInfo) -> None:
        """Count one dispatch of `lane` at `now`."""
        today = local_date(now, tz).isoformat()
        if today != self.day:
            self.day, self.day_counts = today, {}
        self.day_counts[lane] = self.day_counts.get(lane, 0) + 1
        if policy.per_hour is not None or policy.per_day is not None:
            times = self.hour.setdefault(lane, deque())
            while times and times[0] <= now - HOUR:
                times.popleft()
            times.append(now)

    def undo(self, lane: str, at: float, tz: ZoneInfo) -> None:
        """Take back a dispatch counted at `at` that never happened (its message was gone)."""
        times = self.hour.get(lane)
        if times and times[-1] == at:
            times.pop()
        if self.day == local_date(at, tz).isoformat() and self.day_counts.get(lane, 0) > 0:
            self.day_counts[lane] -= 1

    def used_last_hour(self, lane: str, now: float) -> int:
        """Dispatches of `lane` in the hour before `now`."""
        return sum(1 for at in self.hour.get(lane, ()) if at > now - HOUR)

    def used_today(self, lane: str, now: float, tz: ZoneInfo) -> int:
        """Dispatches of `lane` on the calendar day of `now` in `tz`."""
        return self.day_counts.get(lane, 0) if self.day == local_date(now, tz).isoformat() else 0

    def document(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "hour": {lane: list(times) for lane, times in self.hour.items() if times},
            "day": self.day,
            "dayCounts": dict(self.day_counts),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> "Usage":
        """Usage as stored by `document` (empty when there is none)."""
        if not doc:
            return cls()
        return cls(
            hour={lane: deque(map(float, times)) for lane, times in doc.get("hour", {}).items()},
            day=str(doc.get("day", "")),
            day_counts={lane: int(n) for lane, n in doc.get("dayCounts", {}).items()},
        )
