"""The Grafana dashboards parse, query only exported metrics and are provisioned for compose."""

import json
from typing import Any

import yaml

from .dashboard_metrics import (
    DASHBOARDS_DIR,
    KNOWN_DASHBOARD_METRICS,
    LANEGATE_METRICS,
    REPO,
    dashboard_metric_names,
    dashboard_queries,
    exported_metric_names,
    promql_metric_names,
    query_metric_names,
)

PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
EXPECTED_DASHBOARDS = {"overview", "instances", "webhooks", "dependencies"}


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    dashboards = load_dashboards()
    assert dashboards.keys() == EXPECTED_DASHBOARDS
    assert len(dashboards) == len({d["uid"] for d in dashboards.values()})


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    for name, dashboard in load_dashboards().items():
        assert dashboard["panels"], name
        assert "datasource" in {v["name"] for v in dashboard["templating"]["list"]}
        for panel in dashboard["panels"]:
            assert panel["targets"], (name, panel["title"])
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(target["expr"] for target in panel["targets"]), (name, panel["title"])
            assert {"x", "y", "w", "h"} == panel["gridPos"].keys()


def test_dashboards_query_only_metrics_the_services_export() -> None:
    assert set() == dashboard_metric_names() - KNOWN_DASHBOARD_METRICS


def test_every_lanegate_metric_is_on_a_dashboard() -> None:
    assert set() == LANEGATE_METRICS - dashboard_metric_names()


def test_every_dashboard_query_names_a_metric() -> None:
    for name, dashboard in load_dashboards().items():
        for query in dashboard_queries(dashboard):
            assert query_metric_names(query), (name, query)


def test_promql_metric_names_strips_functions_labels_and_histogram_suffixes() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) ("
        'rate(lanegate_http_request_seconds_bucket{job="x", route=~"a|b"}[5m])))'
        " / on (job) group_left () sum(up offset 1h) > bool 1e3"
    )
    assert {"lanegate_http_request_seconds", "up"} == promql_metric_names(expr)


def test_exported_metric_names_reads_type_lines_and_names_counters_by_total() -> None:
    exposition = "\n".join(
        [
            "# HELP lanegate_messages_sent Messages sent.",
            "# TYPE lanegate_messages_sent counter",
            'lanegate_messages_sent_total{lane="bulk"} 1.0',
            "# TYPE lanegate_events_published_total counter",
            "# TYPE lanegate_accept_to_send_seconds histogram",
            'lanegate_accept_to_send_seconds_bucket{le="+Inf"} 1.0',
            "# TYPE lanegate_queue_depth gauge",
        ]
    )
    assert {
        "lanegate_messages_sent_total",
        "lanegate_events_published_total",
        "lanegate_accept_to_send_seconds",
        "lanegate_queue_depth",
    } == exported_metric_names(exposition)


def test_compose_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ][0]
    assert (datasource["type"], datasource["url"]) == ("prometheus", "http://prometheus:9090")
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "lanegate.yml").read_text())[
        "providers"
    ][0]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mount = f"./deploy/grafana/dashboards:{provider['options']['path']}:ro"
    assert mount in compose["services"]["grafana"]["volumes"]
