"""ingress-api's own metrics."""

from prometheus_client import Counter

MESSAGES_ACCEPTED = Counter(
    "lanegate_messages_accepted_total",
    "Messages stored and published as accepted, by lane and type.",
    ["lane", "type"],
)
