"""The scheduler's gauges: instances by state (paused and never-connected ones apart) and the
cap use, which falls as sends leave the hour even when nothing else is sent."""

import random

from prometheus_client import REGISTRY

from lane_scheduler.metrics import INSTANCE_STATES, export_every_cap_use
from lane_scheduler.planner import Pause, Planner
from lanegate.lanes import LanePolicy, Pacing

START = 1_800_000_000.0
PACING = Pacing(
    {
        "urgent": LanePolicy(1.0, 1.0, None, None),
        "normal": LanePolicy(1.0, 1.0, 4, None),
        "bulk": LanePolicy(1.0, 1.0, None, 10),
    }
)


def cap_used(name: str, lane: str) -> float | None:
    return REGISTRY.get_sample_value(
        "lanegate_lane_cap_used_ratio", {"instance_name": name, "lane": lane}
    )


def test_states_tell_paused_and_never_connected_instances_from_disconnected_ones() -> None:
    planner = Planner(random.Random(0))
    planner.configure("new", pacing=PACING, state="close")
    planner.configure("open", pacing=PACING, state="open")
    planner.configure("dropped", pacing=PACING, state="close")
    planner.set_state("dropped", "open", START)
    planner.set_state("dropped", "close", START + 1)
    planner.configure("held", pacing=PACING, state="open")
    planner.pause("held", Pause(since=START, until=START + 60, reason="holiday", by="tenant"))

    during = planner.states(START + 30)
    assert {"never_connected": 1, "open": 1, "close": 1, "paused": 1} == dict(during)
    assert set(during) <= set(INSTANCE_STATES)
    # Once its `until` passes, the paused instance counts by its connection state again.
    assert {"never_connected": 1, "open": 2, "close": 1} == dict(planner.states(START + 61))


def test_cap_use_falls_when_the_hour_rolls_over_without_a_send() -> None:
    planner = Planner(random.Random(0))
    planner.configure("capped", pacing=PACING, state="open")
    planner.add("capped", "m1", "normal", 5, START)
    [decision] = planner.due(START)
    planner.settle("capped", decision.message_id, sent_at=START)

    export_every_cap_use(planner, START + 10)
    assert 0.25 == cap_used("capped", "normal")
    assert 0.0 == cap_used("capped", "bulk")

    export_every_cap_use(planner, START + 3601)
    assert 0.0 == cap_used("capped", "normal")
    assert cap_used("capped", "urgent") is None  # no cap, no series
