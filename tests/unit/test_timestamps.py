"""The one way lanegate writes a time: ISO 8601 UTC with milliseconds and a Z."""

from datetime import UTC, datetime

from lanegate.timestamps import iso_utc


def test_a_utc_time_is_written_with_milliseconds_and_a_z() -> None:
    assert "2026-01-02T03:04:05.678Z" == iso_utc(datetime(2026, 1, 2, 3, 4, 5, 678_901, UTC))


def test_no_time_stays_none() -> None:
    assert None is iso_utc(None)
