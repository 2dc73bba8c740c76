"""webhook-dispatcher's own metrics."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "lanegate_webhook_deliveries_total",
    "Webhook delivery attempts by result (delivered, retry, dead).",
    ["result"],
)
ATTEMPT_SECONDS = Histogram(
    "lanegate_webhook_attempt_seconds",
    "Time one delivery attempt took, up to the answer or the timeout.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DEAD_LETTERS = Counter(
    "lanegate_webhook_dead_letters_total",
    "Deliveries that ran out of attempts, by instance.",
    ["instance_name"],
)
ENDPOINTS_DISABLED = Counter(
    "lanegate_webhook_endpoints_disabled_total",
    "Instance webhooks the dispatcher turned off (410 Gone or failing for too long).",
)
DELIVERIES_DUE = Gauge(
    "lanegate_webhook_deliveries_due",
    "Open deliveries whose next attempt is due now, as the store holds them.",
)
DELIVERIES_RETRYING = Gauge(
    "lanegate_webhook_deliveries_retrying",
    "Deliveries waiting for a retry after a failed attempt, as the store holds them.",
)
