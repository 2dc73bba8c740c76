"""The fault harness itself: a service that does not get ready is a finding, not an error, and
the verdict counts caps over the windows the gateway counts them in."""

from datetime import datetime, timedelta
from pathlib import Path

from devtools.stack import Stack
from tests.faults.injectors import LOG_LINES, unready
from tests.faults.verdict import caps_broken
from tests.faults.workload import CAPS, Instance

CAPPED = Instance("t__support__capped", "t", "key", {lane: dict(c) for lane, c in CAPS.items()})


async def test_a_service_not_answering_readyz_is_a_finding_with_its_logs_last_lines(
    tmp_path: Path,
) -> None:
    stack = Stack.create(tmp_path, settings={})  # nothing listens on its ports
    lines = [f'{{"event": "line {n}"}}' for n in range(LOG_LINES + 5)]
    (tmp_path / "lane_scheduler.log").write_text("\n".join(lines) + "\n")

    [finding] = await unready(stack, ["lane_scheduler"], timeout=0.5)

    assert finding.startswith("lane_scheduler not ready 0 s after its start")
    assert finding.endswith("\n".join(lines[-LOG_LINES:]))
    assert lines[-LOG_LINES - 1] not in finding


def test_a_day_cap_counts_each_calendar_day_so_a_run_across_midnight_may_use_both() -> None:
    # Seed 494389242's long run crossed midnight UTC: 3 bulk sends before it and 3 after.
    evening = datetime(2026, 12, 6, 23, 45)
    sends = [evening + timedelta(minutes=m) for m in (0, 1, 2, 21, 22, 23)]
    cap = CAPS["bulk"]["perDay"]

    assert [] == caps_broken(CAPPED, "bulk", sends)
    assert [f"4 bulk sends on 2026-12-07, cap {cap} a day"] == caps_broken(
        CAPPED, "bulk", [*sends, evening + timedelta(minutes=30)]
    )


def test_an_hour_cap_counts_every_rolling_hour() -> None:
    start, cap = datetime(2026, 12, 6, 10, 0), CAPS["normal"]["perHour"]
    spread = [start + timedelta(minutes=20 * n) for n in range(2 * cap)]  # 3 an hour
    bunched = [*spread[:2], start + timedelta(minutes=50), start + timedelta(minutes=55)]

    assert [] == caps_broken(CAPPED, "normal", spread)
    assert [f"{cap + 1} normal sends in an hour, cap {cap} an hour"] == caps_broken(
        CAPPED, "normal", [*bunched, start + timedelta(minutes=59)]
    )
