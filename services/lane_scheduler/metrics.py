"""lane-scheduler's own metrics."""

import contextlib

from prometheus_client import Gauge, Histogram

from lane_scheduler.planner import Decision, InstanceQueue, Planner
from lanegate.lanes import LANES

QUEUE_DEPTH = Gauge("lanegate_queue_depth", "Messages waiting to be dispatched, by lane.", ["lane"])
INSTANCES = Gauge("lanegate_instances", "Owned instances by connection state.", ["state"])
OWNED_INSTANCES = Gauge("lanegate_scheduler_owned_instances", "Instances this replica schedules.")
SHARDS_LOADING = Gauge(
    "lanegate_scheduler_shards_loading",
    "Shards this replica holds whose waiting messages are still being read from the store.",
)
LANE_CAP_USED = Gauge(
    "lanegate_lane_cap_used_ratio",
    "Share of the tightest cap (hour or day) used, per instance and capped lane.",
    ["instance_name", "lane"],
)
DECISION_SECONDS = Histogram(
    "lanegate_scheduler_decision_seconds",
    "Time one pass over the owned instances took to pick what may go.",
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


def export_cap_use(name: str, queue: InstanceQueue, decision: Decision) -> None:
    """Record how much of its tightest cap the decided message's lane has used."""
    lane, at = decision.lane, decision.at
    policy = queue.pacing.lanes[lane]
    ratios = []
    if policy.per_hour:
        ratios.append(queue.usage.used_last_hour(lane, at) / policy.per_hour)
    if policy.per_day:
        ratios.append(queue.usage.used_today(lane, at, queue.pacing.timezone) / policy.per_day)
    if ratios:
        LANE_CAP_USED.labels(name, lane).set(max(ratios))


def forget_cap_use(name: str) -> None:
    """Stop exporting the cap use of an instance this replica no longer plans."""
    for lane in LANES:
        with contextlib.suppress(KeyError):
            LANE_CAP_USED.remove(name, lane)


def export_plan(planner: Planner) -> None:
    """Record the waiting messages per lane and the owned instances per state."""
    depth = planner.depth()
    for lane in LANES:
        QUEUE_DEPTH.labels(lane).set(depth[lane])
    states = planner.states()
    for state in ("open", "connecting", "close"):
        INSTANCES.labels(state).set(states[state])
    OWNED_INSTANCES.set(len(planner))
