"""lane-scheduler's own metrics."""

from prometheus_client import Gauge, Histogram

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
