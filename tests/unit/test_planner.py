import itertools
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from lane_scheduler.planner import Pause, Planner
from lanegate.lanes import LanePolicy, Pacing, Throughput, Warmup

FIXED = {
    "urgent": LanePolicy(1.0, 1.0, None, None),
    "normal": LanePolicy(5.0, 5.0, 80, 500),
    "bulk": LanePolicy(10.0, 10.0, 30, 200),
}
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def planner_with(*messages: tuple[str, str, int, float], pacing: Pacing | None = None) -> Planner:
    planner = Planner(random.Random(0))
    planner.configure("i", pacing=pacing or Pacing(FIXED), state="open")
    for message_id, lane, priority, queued_at in messages:
        planner.add("i", message_id, lane, priority, queued_at)
    return planner


def drain(planner: Planner, start: float, until: float = float("inf")) -> list[tuple[str, float]]:
    """Send everything due before `until`, settling each message the moment it is dispatched."""
    order, now = [], start
    while (wakeup := planner.next_wakeup()) is not None and max(now, wakeup) < until:
        now = max(now, wakeup)
        for decision in planner.due(now):
            order.append((decision.message_id, now))
            planner.settle("i", decision.message_id, sent_at=now)
    return order


def test_urgent_goes_before_normal_before_bulk_then_priority_then_fifo() -> None:
    planner = planner_with(
        ("bulk-1", "bulk", 5, 1.0),
        ("normal-old", "normal", 5, 2.0),
        ("normal-new", "normal", 5, 3.0),
        ("normal-high", "normal", 9, 4.0),
        ("urgent-low", "urgent", 1, 5.0),
        ("urgent-top", "urgent", 10, 6.0),
    )
    sent = [message_id for message_id, _ in drain(planner, START)]
    expected = ["urgent-top", "urgent-low", "normal-high", "normal-old", "normal-new", "bulk-1"]
    assert expected == sent


def test_each_send_waits_the_gap_of_the_next_messages_lane() -> None:
    planner = planner_with(("u", "urgent", 5, 1.0), ("n", "normal", 5, 2.0), ("b", "bulk", 5, 3.0))
    assert [("u", START), ("n", START + 5), ("b", START + 15)] == drain(planner, START)


def test_gaps_are_random_within_the_lane_window() -> None:
    pacing = Pacing({**FIXED, "normal": LanePolicy(3.0, 8.0, None, None)})
    planner = planner_with(*((f"m{i}", "normal", 5, float(i)) for i in range(200)), pacing=pacing)
    times = [at for _, at in drain(planner, START)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(3.0 <= gap <= 8.0 for gap in gaps)
    assert max(gaps) - min(gaps) > 3.0  # really drawn from the window, not a fixed delay


def test_an_urgent_message_jumps_a_long_bulk_line_at_the_next_free_slot() -> None:
    planner = planner_with(*((f"b{i}", "bulk", 5, float(i)) for i in range(10_000)))
    [first] = planner.due(START)
    planner.settle("i", first.message_id, sent_at=START)
    planner.add("i", "otp", "urgent", 5, START + 0.2)
    assert [] == planner.due(START + 0.5)
    assert ["otp"] == [d.message_id for d in planner.due(START + 1.0)]


def test_one_message_in_flight_per_instance() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0), ("b", "urgent", 5, 2.0))
    assert ["a"] == [d.message_id for d in planner.due(START)]
    assert [] == planner.due(START + 1000)


def test_hour_cap_holds_the_rest_until_the_window_rolls() -> None:
    pacing = Pacing({**FIXED, "normal": LanePolicy(5.0, 5.0, 3, None)})
    planner = planner_with(*((f"n{i}", "normal", 5, float(i)) for i in range(5)), pacing=pacing)
    first_hour = drain(planner, START, until=START + 3600)
    assert [("n0", START), ("n1", START + 5), ("n2", START + 10)] == first_hour
    assert START + 3600 == planner.next_wakeup()
    assert [("n3", START + 3600), ("n4", START + 3605)] == drain(planner, START + 3600)


def test_a_capped_lane_lets_the_next_lane_go_meanwhile() -> None:
    pacing = Pacing({**FIXED, "normal": LanePolicy(5.0, 5.0, 1, None)})
    planner = planner_with(("n1", "normal", 5, 1.0), ("n2", "normal", 5, 2.0), pacing=pacing)
    planner.add("i", "b1", "bulk", 5, 3.0)
    assert [("n1", START), ("b1", START + 10), ("n2", START + 3600)] == drain(planner, START)


def test_day_cap_resets_at_midnight_in_the_instances_time_zone() -> None:
    tz = ZoneInfo("America/Argentina/Buenos_Aires")  # UTC-3
    pacing = Pacing({**FIXED, "bulk": LanePolicy(1.0, 1.0, None, 2)}, timezone=tz)
    late = datetime(2026, 3, 2, 23, 0, tzinfo=tz).timestamp()
    planner = planner_with(*((f"b{i}", "bulk", 5, float(i)) for i in range(3)), pacing=pacing)
    sent = drain(planner, late)
    midnight = datetime(2026, 3, 3, 0, 0, tzinfo=tz).timestamp()
    assert [("b0", late), ("b1", late + 1), ("b2", midnight)] == sent


def test_warmup_grows_the_day_cap_from_the_first_connection() -> None:
    pacing = Pacing({**FIXED, "normal": LanePolicy(0.0, 0.0, None, 500)}, warmup=Warmup(2, 50.0))
    planner = Planner(random.Random(0))
    planner.configure("i", pacing=pacing, state="open", first_connected_at=START - 2 * 86400)
    for i in range(10):
        planner.add("i", f"n{i}", "normal", 5, float(i))
    # Day 2 since connecting: 2 * 1.5 ** 2 = 4.5, so 4 today.
    assert 4 == len(drain(planner, START, until=START + 3600))


def test_scheduled_message_is_not_sent_before_its_time() -> None:
    planner = planner_with()
    planner.add("i", "later", "urgent", 5, START, scheduled_at=START + 60)
    planner.add("i", "now", "bulk", 5, START)
    assert [("now", START), ("later", START + 60)] == drain(planner, START)


def test_a_message_past_valid_until_is_expired_not_sent() -> None:
    planner = planner_with()
    planner.set_state("i", "close", START)
    planner.add("i", "short", "normal", 5, START, valid_until=START + 30)
    assert [] == planner.expired(START + 29)
    assert [("i", "short")] == planner.expired(START + 30)
    planner.set_state("i", "open", START + 31)
    assert [] == planner.due(START + 31)


def test_closed_instance_holds_its_messages_until_it_opens() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.set_state("i", "close", START)
    assert [] == planner.due(START)
    planner.set_state("i", "open", START + 1)
    assert ["a"] == [d.message_id for d in planner.due(START + 1)]


def test_a_ban_pauses_until_the_instance_connects_again() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.pause("i", Pause(START, None, "banned"))
    assert [] == planner.due(START + 100)
    planner.set_state("i", "open", START + 200)
    assert ["a"] == [d.message_id for d in planner.due(START + 200)]


def test_a_pause_with_an_end_lifts_by_itself() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.pause("i", Pause(START, START + 60, "rate limited"))
    assert [] == planner.due(START + 59)
    assert ["a"] == [d.message_id for d in planner.due(START + 60)]


def test_a_tenants_pause_outlasts_a_reconnect_until_resumed() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.pause("i", Pause(START, None, "holiday", by="tenant"))
    planner.set_state("i", "open", START + 100)
    planner.configure("i", pacing=Pacing(FIXED), state="open", state_at=START + 150)
    assert [] == planner.due(START + 200)
    planner.resume("i")
    assert ["a"] == [d.message_id for d in planner.due(START + 200)]


def test_a_providers_ban_leaves_a_tenants_pause_in_place() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.pause("i", Pause(START, START + 60, "holiday", by="tenant"))
    planner.pause("i", Pause(START + 10, None, "banned"))
    planner.set_state("i", "open", START + 20)
    assert [] == planner.due(START + 30)
    assert "holiday" == (planner.queue_of("i").pause or Pause(0, None, "none")).reason


def test_a_providers_ban_after_a_tenants_pause_ended_holds() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.pause("i", Pause(START, START + 60, "holiday", by="tenant"))
    planner.pause("i", Pause(START + 70, None, "banned"))
    assert [] == planner.due(START + 80)


def test_a_resume_lifts_a_providers_ban() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.pause("i", Pause(START, None, "banned"))
    planner.resume("i")
    assert ["a"] == [d.message_id for d in planner.due(START + 1)]


def test_a_canceled_message_is_skipped() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0), ("b", "urgent", 5, 2.0))
    planner.remove("i", "a")
    assert ["b"] == [d.message_id for d in planner.due(START)]
    assert 0 == sum(planner.depth().values())


def test_a_message_added_twice_is_planned_once() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0), ("a", "urgent", 5, 1.0))
    assert 1 == planner.depth()["urgent"]


def test_an_undone_dispatch_gives_its_cap_slot_back() -> None:
    pacing = Pacing({**FIXED, "normal": LanePolicy(0.0, 0.0, 1, None)})
    planner = planner_with(("a", "normal", 5, 1.0), ("b", "normal", 5, 2.0), pacing=pacing)
    [decision] = planner.due(START)
    planner.undo(decision)
    assert ["b"] == [d.message_id for d in planner.due(START)]


def test_last_send_from_the_store_delays_the_first_send_after_a_restart() -> None:
    planner = planner_with()
    planner.restore("i", last_sent_at=START)
    planner.add("i", "n", "normal", 5, 1.0)
    assert [] == planner.due(START + 4.9)
    assert ["n"] == [d.message_id for d in planner.due(START + 5)]


def test_in_flight_without_outcome_is_reported_stale_after_the_timeout() -> None:
    planner = planner_with(("a", "urgent", 5, 1.0))
    planner.due(START)
    assert [] == planner.stale(START + 59, 60)
    assert ["a"] == [d.message_id for d in planner.stale(START + 60, 60)]


def cloud(per_second: float = 10, gap: float = 6.0) -> Pacing:
    return Pacing(FIXED, throughput=Throughput(per_second, gap))


def test_cloud_api_is_paced_by_throughput_not_by_anti_ban_gaps() -> None:
    planner = planner_with(pacing=cloud(per_second=10))
    for i in range(5):
        planner.add("i", f"m{i}", "bulk", 5, float(i), to=f"54911000000{i}")
    times = []
    now = START
    while (wakeup := planner.next_wakeup()) is not None:
        now = max(now, wakeup)
        times += [now for _ in planner.due(now)]
    assert [START + i * 0.1 for i in range(5)] == [round(t, 6) for t in times]


def test_cloud_api_keeps_a_minimum_gap_per_recipient() -> None:
    planner = planner_with(pacing=cloud(per_second=100, gap=6.0))
    planner.add("i", "first", "normal", 5, 1.0, to="5491100000001")
    planner.add("i", "again", "normal", 5, 2.0, to="5491100000001")
    planner.add("i", "other", "normal", 5, 3.0, to="5491100000002")
    sent = []
    now = START
    while (wakeup := planner.next_wakeup()) is not None:
        now = max(now, wakeup)
        sent += [(d.message_id, round(now - START, 3)) for d in planner.due(now)]
    assert [("first", 0.0), ("other", 0.01), ("again", 6.0)] == sent


def test_a_message_back_from_the_sender_counts_as_a_send_for_the_next_gap() -> None:
    planner = planner_with(("a", "normal", 5, 1.0), ("b", "normal", 5, 2.0))
    [decision] = planner.due(START)
    # The attempt timed out and the message was parked: it may have reached the phone.
    planner.add("i", decision.message_id, "normal", 5, START + 0.5)
    assert [] == planner.due(START + 5.4)
    assert ["b"] == [d.message_id for d in planner.due(START + 5.5)]  # "a" queued again, behind


def test_a_stored_open_state_newer_than_the_pause_lifts_it() -> None:
    # Read again from the store after a reconnect: the instance connected after its ban.
    planner = planner_with(("m", "normal", 5, 1.0))
    planner.pause("i", Pause(START, None, "banned"))
    planner.configure("i", pacing=Pacing(FIXED), state="open", state_at=START + 60)
    assert ["m"] == [d.message_id for d in planner.due(START + 61)]


def test_a_stored_pause_older_than_the_instances_open_state_is_not_put_back() -> None:
    # The store was read before an `open` event lifted the pause; that read arrives after it.
    planner = planner_with(("m", "normal", 5, 1.0))
    planner.pause("i", Pause(START, None, "banned"))
    planner.set_state("i", "open", START + 60)
    planner.configure(
        "i", pacing=Pacing(FIXED), state="close", state_at=START, pause=Pause(START, None, "banned")
    )
    assert ["m"] == [d.message_id for d in planner.due(START + 61)]
