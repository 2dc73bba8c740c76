"""A number's health: what happened to it per day (sends, replies, failures, blocks, reports)
counted as it happens, and a 0-100 score over the last 7 days from those counts."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import UpdateOne

from lanegate.store import Store
from lanegate.store.grouped import grouped_writes

DAYS = 7
# A reply counts when the contact writes within this long after the number's last message.
REPLY_WINDOW = timedelta(hours=24)
# A day's counts are kept a day longer than the score looks back.
KEPT = timedelta(days=DAYS + 1)
# Under this many sends the reply rate says nothing yet: it is not held against the number.
FEWEST_SENDS_JUDGED = 20


class Counted(StrEnum):
    """What a day's record counts."""

    SENT = "sent"
    REPLIES = "replies"
    FAILURES = "failures"
    BLOCKS = "blocks"
    REPORTS = "reports"


@dataclass(frozen=True)
class Part:
    """One part of the score: its rate, the most it gives, and what it gives now."""

    rate: float
    points: float
    most: int


@dataclass(frozen=True)
class Totals:
    """The counts over the score's days."""

    sent: int = 0
    replies: int = 0
    failures: int = 0
    blocks: int = 0
    reports: int = 0


def day_of(at: datetime) -> datetime:
    """The UTC midnight starting the day of `at`."""
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def count(
    store: Store, tenant_id: str, instance_name: str, what: Counted, at: datetime
) -> None:
    """Add one to the instance's count of `what` for the day of `at` (one upsert, in one
    write with the process's other counts made meanwhile)."""
    day = day_of(at)
    upsert = UpdateOne(
        {"_id": f"{instance_name}|{day.date().isoformat()}"},
        {
            "$inc": {what.value: 1},
            "$setOnInsert": {
                "tenantId": tenant_id,
                "instanceName": instance_name,
                "day": day,
                "expiresAt": day + KEPT,
            },
        },
        upsert=True,
    )
    await grouped_writes(store, store.instance_health).write([upsert])


async def totals(store: Store, instance_name: str, now: datetime) -> Totals:
    """The instance's counts over the last `DAYS` days, today included (at most 7 reads)."""
    since = day_of(now) - timedelta(days=DAYS - 1)
    found = store.instance_health.find({"instanceName": instance_name, "day": {"$gte": since}})
    sums = dict.fromkeys((c.value for c in Counted), 0)
    async for day in found:
        for key in sums:
            sums[key] += int(day.get(key, 0))
    return Totals(**sums)


def _falling(rate: float, bound: float, most: int) -> Part:
    """A part that gives `most` at a rate of 0 and nothing from `bound` on."""
    return Part(rate, most * max(0.0, 1 - rate / bound), most)


def parts(t: Totals) -> dict[str, Part]:
    """The score's parts: replies earn up to 40 (all from a 30% reply rate on), failures cost
    up to 20 (all at 20% of attempts), blocks 25 (at 2% of sends), reports 15 (at 1%)."""
    sends = max(t.sent, 1)
    reply_rate = min(1.0, t.replies / sends)
    judged = t.sent >= FEWEST_SENDS_JUDGED
    reply_points = 40 * min(1.0, reply_rate / 0.3) if judged else 40.0
    return {
        "replies": Part(reply_rate, reply_points, 40),
        "failures": _falling(t.failures / max(t.sent + t.failures, 1), 0.2, 20),
        "blocks": _falling(t.blocks / sends, 0.02, 25),
        "reports": _falling(t.reports / sends, 0.01, 15),
    }


def score(t: Totals) -> int:
    """The health score, 0 to 100: the sum of its parts."""
    return round(sum(p.points for p in parts(t).values()))


def view(t: Totals) -> dict[str, Any]:
    """The score, its parts and the counts, as the API shows them."""
    return {
        "days": DAYS,
        "sent": t.sent,
        "replies": t.replies,
        "failures": t.failures,
        "blocks": t.blocks,
        "reports": t.reports,
        "score": score(t),
        "parts": {
            name: {"rate": round(p.rate, 4), "points": round(p.points, 1), "max": p.most}
            for name, p in parts(t).items()
        },
    }
