from datetime import UTC, datetime, timedelta

from lanegate.holds import Hold, hold_at, pause_holds

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def test_a_pause_with_no_end_holds_until_it_is_lifted() -> None:
    assert Hold[datetime](None) == hold_at(NOW, paused=True)
    assert pause_holds(None, NOW + timedelta(days=365))


def test_a_pause_holds_until_its_end_and_not_from_then_on() -> None:
    assert Hold(LATER) == hold_at(NOW, paused=True, paused_until=LATER)
    assert hold_at(LATER, paused=True, paused_until=LATER) is None


def test_a_throttle_holds_until_its_end_when_no_pause_does() -> None:
    assert Hold(LATER) == hold_at(NOW, paused=False, throttled_until=LATER)
    assert Hold(LATER) == hold_at(NOW, paused=True, paused_until=NOW, throttled_until=LATER)
    assert hold_at(LATER, paused=False, throttled_until=LATER) is None


def test_the_pause_decides_before_the_throttle() -> None:
    assert Hold[datetime](None) == hold_at(NOW, paused=True, throttled_until=LATER)


def test_the_planners_unix_seconds_follow_the_same_rules() -> None:
    now, later = NOW.timestamp(), LATER.timestamp()

    assert Hold(later) == hold_at(now, paused=True, paused_until=later)
    assert hold_at(later, paused=True, paused_until=later) is None
    assert hold_at(now, paused=False) is None
