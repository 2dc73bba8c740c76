"""provider-sender's own metrics."""

from prometheus_client import Counter, Histogram

MESSAGES_SENT = Counter(
    "lanegate_messages_sent_total", "Messages a provider accepted.", ["lane", "provider"]
)
MESSAGES_FAILED = Counter(
    "lanegate_messages_failed_total",
    "Messages that failed for good, by provider and error code.",
    ["provider", "code"],
)
MESSAGE_STATUS = Counter(
    "lanegate_message_status_total",
    "Status reports from providers (delivered, read, ...).",
    ["status", "provider"],
)
ACCEPT_TO_SEND = Histogram(
    "lanegate_accept_to_send_seconds",
    "Time from a message's acceptance to the provider taking it.",
    buckets=(1, 2, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400),
)
PROVIDER_SECONDS = Histogram(
    "lanegate_provider_request_seconds",
    "Time a provider call took.",
    ["provider", "operation"],
)
