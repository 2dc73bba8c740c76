"""Whether an instance's sends are on hold now: its pause (a tenant's or a provider's) or a
throttle. The scheduler's planner and provider-sender's dispatcher both ask here; the planner
keeps times as Unix seconds, provider-sender as stored datetimes."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Hold[Moment: (float, datetime)]:
    """Sends wait until `until`; with no `until`, until the pause is lifted."""

    until: Moment | None


def pause_holds[Moment: (float, datetime)](until: Moment | None, at: Moment) -> bool:
    """Whether a pause ending at `until` (None: only when lifted) still holds sends at `at`."""
    return until is None or at < until


def hold_at[Moment: (float, datetime)](
    at: Moment,
    *,
    paused: bool,
    paused_until: Moment | None = None,
    throttled_until: Moment | None = None,
) -> Hold[Moment] | None:
    """What holds an instance's sends at `at`: its pause, else a throttle; None when nothing."""
    if paused and pause_holds(paused_until, at):
        return Hold(paused_until)
    if throttled_until is not None and at < throttled_until:
        return Hold(throttled_until)
    return None
