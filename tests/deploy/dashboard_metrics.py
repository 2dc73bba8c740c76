"""Metric names that the Grafana dashboards and alert rules query, and that services export."""

import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "deploy" / "grafana" / "dashboards"
RULES_FILE = REPO / "deploy" / "prometheus" / "rules.yml"

# Each service's metrics module, imported so its metrics are in the default registry.
METRICS_MODULES = (
    "lanegate.metrics",
    "ingress_api.metrics",
    "lane_scheduler.metrics",
    "provider_sender.metrics",
    "webhook_dispatcher.metrics",
    "template_sync.metrics",
)


def registered_lanegate_metrics() -> frozenset[str]:
    """Every `lanegate_` metric the services declare, with counters under their _total name."""
    for module in METRICS_MODULES:
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("lanegate_"):
            names.add(family.name + "_total" if family.type == "counter" else family.name)
    return frozenset(names)


LANEGATE_METRICS = registered_lanegate_metrics()


def lanegate_label_names() -> dict[str, frozenset[str]]:
    """Each `lanegate_` series name the services export with the labels it carries (those
    Prometheus adds, `job` and `instance`, besides)."""
    labels: dict[str, frozenset[str]] = {}
    for collector, names in REGISTRY._collector_to_names.items():
        declared = getattr(collector, "_labelnames", None)
        if declared is None:
            continue
        for name in names:
            if name.startswith("lanegate_"):
                labels[name] = frozenset({*declared, "job", "instance"})
    return labels


# prometheus_client's default process collector, present in every service.
PROCESS_METRICS = frozenset(
    {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    }
)
# Series Prometheus makes itself for every target; no service exports them.
PROMETHEUS_SYNTHETIC_METRICS = frozenset({"up"})
# RabbitMQ's own per-object metrics (rabbitmq_prometheus plugin): queue alerts and panels.
RABBITMQ_METRICS = frozenset(
    {"rabbitmq_queue_consumers", "rabbitmq_queue_messages", "rabbitmq_queue_messages_ready"}
)

KNOWN_DASHBOARD_METRICS = (
    LANEGATE_METRICS | PROCESS_METRICS | PROMETHEUS_SYNTHETIC_METRICS | RABBITMQ_METRICS
)
KNOWN_RULE_METRICS = KNOWN_DASHBOARD_METRICS

_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")
_HISTOGRAM_SUFFIX = re.compile(r"_(?:bucket|sum|count)$")


def promql_metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects, histogram suffixes stripped."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    names = {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}
    return {_HISTOGRAM_SUFFIX.sub("", name) for name in names}


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Return every PromQL expression of a dashboard's panels, rows and query variables."""
    queries: list[str] = []
    panels = list(dashboard.get("panels", []))
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        queries.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def query_metric_names(query: str) -> set[str]:
    """Return the metric names of a panel expression or a `label_values(...)` query."""
    label_values = _LABEL_VALUES.search(query)
    if label_values:
        return {_HISTOGRAM_SUFFIX.sub("", label_values.group(1))}
    return promql_metric_names(query)


def dashboard_metric_names() -> set[str]:
    """Return the base metric names that the dashboards in deploy/grafana query."""
    names: set[str] = set()
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        for query in dashboard_queries(json.loads(path.read_text())):
            names |= query_metric_names(query)
    return names


def rule_metric_names() -> set[str]:
    """Return the base metric names referenced by the alert rules in deploy/prometheus/rules.yml."""
    names: set[str] = set()
    for group in yaml.safe_load(RULES_FILE.read_text())["groups"]:
        for rule in group["rules"]:
            names |= promql_metric_names(rule["expr"])
    return names


def exported_metric_names(exposition_text: str) -> set[str]:
    """Return the metric names declared by `# TYPE` lines of a Prometheus text exposition.

    Counters are returned under their `_total` sample name whether or not the
    TYPE line carries the suffix, so the result compares with dashboard names.
    """
    names = set()
    for line in exposition_text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[:2] == ["#", "TYPE"]:
            name, kind = parts[2], parts[3]
            if kind == "counter" and not name.endswith("_total"):
                name += "_total"
            names.add(name)
    return names
