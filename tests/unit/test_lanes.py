"""Pacing arithmetic shared by the scheduler and ingress-api: days connected and cap usage."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from lanegate.lanes import (
    DEFAULT_POLICIES,
    HOUR,
    LanePolicy,
    Pacing,
    Usage,
    Warmup,
    policies_for,
)

TOKYO = ZoneInfo("Asia/Tokyo")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_days_connected_count_calendar_days_in_the_instances_time_zone() -> None:
    pacing = Pacing(lanes=DEFAULT_POLICIES, timezone=TOKYO, warmup=Warmup(10, 100))
    # 14:00 UTC is 23:00 in Tokyo; 16:00 UTC is already the next day there.
    assert 1 == pacing.days_connected(at("2026-03-02T14:00"), at("2026-03-02T16:00"))
    assert 0 == pacing.days_connected(at("2026-03-02T16:00"), at("2026-03-03T14:00"))
    assert 0 == pacing.days_connected(None, at("2026-03-02T16:00"))


def test_the_warm_up_lowers_a_lane_day_cap_by_days_connected() -> None:
    pacing = Pacing(lanes=DEFAULT_POLICIES, warmup=Warmup(10, 100))
    first = at("2026-03-01T09:00")

    caps = [
        pacing.day_cap("normal", pacing.days_connected(first, first + d * 86400)) for d in (0, 2, 9)
    ]

    assert [10, 40, 500] == caps  # the lane's own cap of 500 once the warm-up passes it


def test_usage_counts_the_last_hour_and_the_local_day() -> None:
    usage = Usage()
    policy = DEFAULT_POLICIES["normal"]
    first = at("2026-03-02T14:30")  # 23:30 in Tokyo
    usage.record("normal", policy, first, TOKYO)
    usage.record("normal", policy, first + 600, TOKYO)  # 23:40 in Tokyo

    assert (2, 2) == (
        usage.used_last_hour("normal", first + 600),
        usage.used_today("normal", first + 600, TOKYO),
    )
    assert 1 == usage.used_last_hour("normal", first + HOUR + 1)
    assert 0 == usage.used_today("normal", first + HOUR, TOKYO)  # the next day there
    assert 0 == usage.used_last_hour("bulk", first)


def test_usage_reads_back_as_stored() -> None:
    usage = Usage()
    usage.record("bulk", DEFAULT_POLICIES["bulk"], at("2026-03-02T10:00"), TOKYO)

    again = Usage.from_document(usage.document())

    assert usage.document() == again.document()
    assert 1 == again.used_today("bulk", at("2026-03-02T11:00"), TOKYO)


def test_email_instances_start_from_the_email_lane_defaults() -> None:
    policies = policies_for({"provider": "smtp", "lanes": {"bulk": {"perDay": 50}}})
    assert LanePolicy(0.5, 1.0, 1000, None) == policies["normal"]
    assert LanePolicy(1.0, 2.0, 500, 50) == policies["bulk"]
    assert DEFAULT_POLICIES == policies_for({"provider": "waha"})
