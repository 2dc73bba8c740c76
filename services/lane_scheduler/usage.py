"""What an instance has sent lately, per lane: the rolling hour and its calendar day.

Caps count dispatches (a message handed to the sender), so a message that
later fails still used its slot: a cap is never exceeded, even by a send
whose outcome is unknown.
"""

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lanegate.lanes import LanePolicy

HOUR = 3600.0


def local_date(at: float, tz: ZoneInfo) -> date:
    """The calendar date at `at` (Unix seconds) in time zone `tz`."""
    return datetime.fromtimestamp(at, tz).date()


def next_midnight(at: float, tz: ZoneInfo) -> float:
    """When the calendar day containing `at` ends in `tz` (DST-aware)."""
    tomorrow = local_date(at, tz) + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=tz).timestamp()


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
