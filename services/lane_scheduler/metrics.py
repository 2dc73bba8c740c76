"""lane-scheduler's own metrics."""

import contextlib

from prometheus_client import Gauge, Histogram

from lane_scheduler.ownership import Ownership
from lane_scheduler.planner import InstanceQueue, Planner
from lanegate.lanes import LANES

# Every state `lanegate_instances` carries, exported at 0 too so that sums over the replicas
# see each one.
INSTANCE_STATES = ("open", "connecting", "close", "paused", "never_connected")

QUEUE_DEPTH = Gauge("lanegate_queue_depth", "Messages waiting to be dispatched, by lane.", ["lane"])
INSTANCES = Gauge(
    "lanegate_instances",
    "Instances this replica owns, by state (paused and never_connected before the connection).",
    ["state"],
)
OWNED_INSTANCES = Gauge("lanegate_scheduler_owned_instances", "Instances this replica schedules.")
OWNED_SHARDS = Gauge(
    "lanegate_scheduler_owned_shards",
    "Shards this replica holds a live lease on (all replicas together hold every shard).",
)
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


def export_cap_use(name: str, queue: InstanceQueue, at: float) -> None:
    """Record how much of its tightest cap (hour or day) each capped lane has used at `at`."""
    if queue.pacing.throughput is not None:
        return  # Cloud API numbers are paced by throughput, not by caps
    for lane, policy in queue.pacing.lanes.items():
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


def export_plan(planner: Planner, ownership: Ownership, now: float) -> None:
    """Record the waiting messages per lane and the owned shards and instances per state."""
    depth = planner.depth()
    for lane in LANES:
        QUEUE_DEPTH.labels(lane).set(depth[lane])
    states = planner.states(now)
    for state in INSTANCE_STATES:
        INSTANCES.labels(state).set(states[state])
    OWNED_INSTANCES.set(len(planner))
    OWNED_SHARDS.set(ownership.live_shards())


def export_every_cap_use(planner: Planner, now: float) -> None:
    """Record every owned instance's cap use, so it falls as sends leave the hour or the day
    even when nothing is sent."""
    for name in planner.names():
        export_cap_use(name, planner.queue_of(name), now)
