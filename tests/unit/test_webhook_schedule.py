import random
from datetime import UTC, datetime

from webhook_dispatcher.schedule import parse_retry_after, retry_delay

SCHEDULE = (1.0, 5.0, 30.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0)


def test_without_jitter_the_delays_follow_the_schedule() -> None:
    delays = [retry_delay(SCHEDULE, n, jitter=0) for n in range(1, 9)]
    assert list(SCHEDULE) == delays


def test_after_the_last_scheduled_retry_there_is_none() -> None:
    assert retry_delay(SCHEDULE, 9, jitter=0.1) is None


def test_jitter_stays_within_its_fraction_and_varies() -> None:
    rng = random.Random(7)
    delays = [retry_delay(SCHEDULE, 3, jitter=0.1, rng=rng) or 0 for _ in range(200)]
    assert all(27.0 <= d <= 33.0 for d in delays)
    assert len(set(delays)) > 100


def test_a_longer_retry_after_wins_over_the_schedule() -> None:
    assert 120.0 == retry_delay(SCHEDULE, 1, jitter=0, retry_after=120)


def test_a_shorter_retry_after_does_not_shorten_the_schedule() -> None:
    assert 30.0 == retry_delay(SCHEDULE, 3, jitter=0, retry_after=2)


def test_retry_after_is_capped_at_a_day() -> None:
    assert 86400.0 == retry_delay(SCHEDULE, 1, jitter=0, retry_after=10**9)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 15, 10, 30, tzinfo=UTC)
    assert 120.0 == parse_retry_after("120", now)
    assert 90.0 == parse_retry_after("Sun, 15 Mar 2026 10:31:30 GMT", now)
    assert 0.0 == parse_retry_after("Sun, 15 Mar 2026 10:00:00 GMT", now)


def test_unusable_retry_after_is_ignored() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
