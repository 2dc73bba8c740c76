"""When the next attempt of a failing delivery is due: the schedule, jitter and `Retry-After`."""

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A receiver cannot push a retry further out than this (a bad header must not park a delivery).
MAX_RETRY_AFTER_SECONDS = 86400.0


def retry_delay(
    schedule: tuple[float, ...],
    attempts: int,
    *,
    jitter: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait after failed attempt number `attempts` (1-based), or None when none is left.

    The scheduled delay is spread by up to +-`jitter` of itself so endpoints that
    failed together do not get retried together; a `Retry-After` longer than that
    wins.
    """
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    spread = base * jitter * (2 * (rng or random).random() - 1)
    delay = max(0.0, base + spread)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
