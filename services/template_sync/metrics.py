"""template-sync's own metrics."""

from prometheus_client import Counter

SYNCS = Counter(
    "lanegate_template_syncs_total",
    "Template syncs of one instance, by result "
    "(ok, not_configured, api_error, rate_limited, target_refused).",
    ["result"],
)
TEMPLATES_DELETED = Counter(
    "lanegate_templates_deleted_total",
    "Templates marked deleted because Meta no longer lists them.",
)
TEMPLATE_STATUS_CHANGES = Counter(
    "lanegate_template_status_changes_total",
    "Template status changes Meta reported, by new status.",
    ["status"],
)
