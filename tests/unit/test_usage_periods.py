"""The range and periods `GET /account/usage` answers with: defaults, limits, calendar months
cut to the range, and day records summed into them."""

from datetime import UTC, date, datetime

import pytest

from ingress_api.accounts.usage import Period, month_start, periods, summed, usage_range, zero
from lanegate.errors import InvalidInput

TODAY = date(2026, 3, 15)


def test_without_from_a_range_is_the_last_30_days_or_12_months() -> None:
    assert (date(2026, 2, 14), TODAY) == usage_range(None, None, "day", TODAY)
    assert (date(2025, 4, 1), TODAY) == usage_range(None, None, "month", TODAY)
    assert (date(2025, 2, 1), date(2026, 1, 31)) == usage_range(None, "2026-01-31", "month", TODAY)


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("2026-02-29", None, "from"),  # 2026 is no leap year
        ("2026-1-5", None, "from"),
        (None, "15/03/2026", "to"),
        ("2026-03-16", None, "from"),  # after today, the default `to`
        ("2025-03-14", None, "from"),  # 367 days
    ],
)
def test_a_bad_day_or_range_names_its_field(
    first: str | None, last: str | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        usage_range(first, last, "day", TODAY)
    assert [[field]] == [issue["path"] for issue in refused.value.issues]


def test_a_range_may_cover_366_days_in_a_leap_year() -> None:
    assert (date(2024, 1, 1), date(2024, 12, 31)) == usage_range(
        "2024-01-01", "2024-12-31", "day", TODAY
    )
    assert 366 == len(periods(date(2024, 1, 1), date(2024, 12, 31), "day"))


def test_months_are_calendar_months_cut_to_the_range() -> None:
    assert [
        Period("2025-12", date(2025, 12, 20), date(2025, 12, 31)),
        Period("2026-01", date(2026, 1, 1), date(2026, 1, 31)),
        Period("2026-02", date(2026, 2, 1), date(2026, 2, 10)),
    ] == periods(date(2025, 12, 20), date(2026, 2, 10), "month")
    assert [Period("2026-02", date(2026, 2, 3), date(2026, 2, 3))] == periods(
        date(2026, 2, 3), date(2026, 2, 3), "month"
    )
    assert (date(2025, 12, 1), date(2026, 1, 1)) == (
        month_start(TODAY, 3),
        month_start(date(2025, 12, 9), -1),
    )


def test_day_records_sum_into_months_by_channel_and_instance() -> None:
    def day(d: date, name: str, channel: str | None, **counts: int) -> dict[str, object]:
        record = {"day": datetime(d.year, d.month, d.day, tzinfo=UTC), "instanceName": name}
        return record | ({"channel": channel} if channel else {}) | counts

    records = [
        day(date(2026, 1, 31), "a", "whatsapp", accepted=2, sent=1),
        day(date(2026, 2, 1), "a", "whatsapp", accepted=3, failed=1),
        day(date(2026, 2, 28), "m", "email", accepted=1, webhooksDelivered=4),
        day(date(2026, 2, 28), "o", None, otpSent=1),
    ]

    shown = summed(records, date(2026, 1, 1), date(2026, 3, 1), "month")

    january, february, march = shown["periods"]
    assert (
        zero() | {"accepted": 6, "sent": 1, "failed": 1, "webhooksDelivered": 4, "otpSent": 1}
        == (shown["totals"])
    )
    assert {"a": zero() | {"accepted": 2, "sent": 1}} == january["byInstance"]
    assert {"whatsapp", "email", "unknown"} == set(february["byChannel"])
    assert zero() | {"accepted": 3, "failed": 1} == february["byChannel"]["whatsapp"]
    assert ("2026-03", "2026-03-01", zero(), {}) == (
        march["period"],
        march["to"],
        march["totals"],
        march["byInstance"],
    )
