"""Reading a tenant's usage: the range and periods asked for, and the day records summed
into them (months are summed from days here, at read time)."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from lanegate.errors import InvalidInput
from lanegate.store import Document, Store
from lanegate.usage import Counted

Granularity = Literal["day", "month"]
# The longest range one request may ask for, in days (both ends included).
MAX_DAYS = 366
# With no `from`: this many days (day) or months (month) up to `to`.
DEFAULT_DAYS = 30
DEFAULT_MONTHS = 12
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Period:
    """One period of the answer: its name and its first and last day within the range."""

    name: str
    first: date
    last: date


def _parse_day(field: str, value: str) -> date:
    if not ISO_DAY.fullmatch(value):
        raise InvalidInput([([field], "Use a day as YYYY-MM-DD")])
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise InvalidInput([([field], f"Not a calendar day: {value}")]) from e


def month_start(day: date, months_back: int = 0) -> date:
    """The first day of the month `months_back` months before the month of `day`."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def usage_range(
    first: str | None, last: str | None, granularity: Granularity, today: date
) -> tuple[date, date]:
    """The days asked for, both included; 400 on a bad day, `from` after `to`, or a range
    longer than `MAX_DAYS`."""
    end = today if last is None else _parse_day("to", last)
    if first is not None:
        start = _parse_day("from", first)
    elif granularity == "month":
        start = month_start(end, DEFAULT_MONTHS - 1)
    else:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput([(["from"], "Must not be after `to`")])
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput([(["from"], f"The range may cover at most {MAX_DAYS} days")])
    return start, end


def periods(start: date, end: date, granularity: Granularity) -> list[Period]:
    """Every day, or every calendar month cut to the range, from `start` to `end`."""
    found: list[Period] = []
    day = start
    while day <= end:
        if granularity == "day":
            found.append(Period(day.isoformat(), day, day))
            day += timedelta(days=1)
            continue
        following = month_start(day, -1)
        last = min(end, following - timedelta(days=1))
        found.append(Period(day.strftime("%Y-%m"), day, last))
        day = following
    return found


def period_of(day: date, granularity: Granularity) -> str:
    """The name of the period `day` falls in."""
    return day.isoformat() if granularity == "day" else day.strftime("%Y-%m")


def zero() -> dict[str, int]:
    """Counts with nothing counted."""
    return dict.fromkeys((c.value for c in Counted), 0)


def _add(into: dict[str, int], record: Document) -> None:
    for key in into:
        into[key] += int(record.get(key, 0))


def summed(
    records: Iterable[Document], start: date, end: date, granularity: Granularity
) -> dict[str, Any]:
    """The day records summed into the range's totals and each period's, by channel and by
    instance."""
    totals = zero()
    shown: dict[str, dict[str, Any]] = {
        p.name: {
            "period": p.name,
            "from": p.first.isoformat(),
            "to": p.last.isoformat(),
            "totals": zero(),
            "byChannel": {},
            "byInstance": {},
        }
        for p in periods(start, end, granularity)
    }
    for record in records:
        period = shown[period_of(record["day"].date(), granularity)]
        channel = record.get("channel") or "unknown"
        for into in (
            totals,
            period["totals"],
            period["byChannel"].setdefault(channel, zero()),
            period["byInstance"].setdefault(record["instanceName"], zero()),
        ):
            _add(into, record)
    return {"totals": totals, "periods": list(shown.values())}


async def day_records(
    store: Store, tenant_id: str, start: date, end: date, instance_name: str | None
) -> list[Document]:
    """The tenant's usage records of the days from `start` to `end` (of one instance)."""
    where: dict[str, Any] = {"tenantId": tenant_id, "day": _days(start, end)}
    if instance_name is not None:
        where["instanceName"] = instance_name
    return await store.usage_days.find(where).to_list(None)


async def day_records_of_tenants(
    store: Store, tenant_ids: Iterable[str], start: date, end: date
) -> list[Document]:
    """The usage records of several tenants' days from `start` to `end`."""
    where = {"tenantId": {"$in": list(tenant_ids)}, "day": _days(start, end)}
    return await store.usage_days.find(where).to_list(None)


def _days(start: date, end: date) -> dict[str, datetime]:
    return {"$gte": _midnight(start), "$lte": _midnight(end)}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
