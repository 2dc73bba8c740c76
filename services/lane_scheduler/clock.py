"""The scheduler's time: Unix seconds from a clock tests can move, and the store's datetimes."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Clock = Callable[[], float]


def stored_time(seconds: float) -> datetime:
    """Unix seconds as the datetime the store keeps."""
    return datetime.fromtimestamp(seconds, UTC)


def unix_seconds(value: Any) -> float | None:
    """A stored datetime as Unix seconds (anything else, None included, as None)."""
    return value.timestamp() if isinstance(value, datetime) else None
