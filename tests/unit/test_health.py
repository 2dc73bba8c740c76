from datetime import UTC, datetime, timedelta

from lanegate.conversations import is_reply
from lanegate.health import FEWEST_SENDS_JUDGED, Totals, day_of, parts, score, view


def test_a_number_nobody_answers_loses_the_reply_part() -> None:
    assert 60 == score(Totals(sent=1000))
    assert 0.0 == parts(Totals(sent=1000))["replies"].points


def test_replies_earn_up_to_their_part_from_a_thirty_percent_rate() -> None:
    assert 100 == score(Totals(sent=100, replies=30))
    assert 100 == score(Totals(sent=100, replies=90))
    assert 80 == score(Totals(sent=100, replies=15))


def test_few_sends_are_not_judged_on_replies() -> None:
    assert 100 == score(Totals())
    assert 100 == score(Totals(sent=FEWEST_SENDS_JUDGED - 1))
    assert 60 == score(Totals(sent=FEWEST_SENDS_JUDGED))


def test_failures_blocks_and_reports_each_cost_their_part() -> None:
    assert 90 == score(Totals(sent=100, replies=30, failures=11))  # 11 of 111 attempts: ~10%
    assert 75 == score(Totals(sent=100, replies=30, blocks=2))
    assert 85 == score(Totals(sent=100, replies=30, reports=1))
    worst = Totals(sent=100, failures=100, blocks=50, reports=50)
    assert 0 == score(worst)


def test_the_view_shows_counts_score_and_parts() -> None:
    shown = view(Totals(sent=100, replies=15, failures=0, blocks=1, reports=0))
    assert (7, 100, 15, 68) == (shown["days"], shown["sent"], shown["replies"], shown["score"])
    assert {"rate": 0.15, "points": 20.0, "max": 40} == shown["parts"]["replies"]
    assert {"rate": 0.01, "points": 12.5, "max": 25} == shown["parts"]["blocks"]


def test_a_reply_is_the_first_message_within_a_day_of_the_last_one_sent() -> None:
    sent = datetime(2026, 5, 1, 12, tzinfo=UTC)
    chat = {"lastOutboundAt": sent, "lastInboundAt": sent - timedelta(days=2)}
    assert is_reply(chat, sent + timedelta(hours=23))
    assert not is_reply(chat, sent + timedelta(hours=25))
    assert not is_reply(
        {**chat, "lastInboundAt": sent + timedelta(hours=1)}, sent + timedelta(hours=2)
    )
    assert not is_reply({"lastInboundAt": sent}, sent)
    assert not is_reply(None, sent)


def test_a_day_starts_at_utc_midnight() -> None:
    at = datetime(2026, 5, 1, 23, 30, tzinfo=UTC)
    assert datetime(2026, 5, 1, tzinfo=UTC) == day_of(at)
