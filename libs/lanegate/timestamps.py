"""How lanegate writes a time in its API and its webhooks: ISO 8601 UTC, milliseconds, a Z."""

from datetime import datetime
from typing import overload


@overload
def iso_utc(value: datetime) -> str: ...


@overload
def iso_utc(value: None) -> None: ...


def iso_utc(value: datetime | None) -> str | None:
    """`value` written like 2026-01-02T03:04:05.678Z; None stays None."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
