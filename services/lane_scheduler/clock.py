"""The scheduler's time: Unix seconds from a clock tests can move, and the store's datetimes."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]


def stored_time(seconds: float) -> datetime:
    """Unix seconds as the datetime the store keeps."""
    return datetime.fromtimestamp(seconds, UTC)
