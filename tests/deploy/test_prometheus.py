"""The alert rules and the compose scrape config pass promtool and query only known metrics."""

import shutil
import subprocess
from pathlib import Path

import yaml

from devtools import prometheus_rule

from .dashboard_metrics import (
    KNOWN_RULE_METRICS,
    REPO,
    RULES_FILE,
    lanegate_label_names,
    rule_metric_names,
)
from .service_facts import SERVICES

PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
# By hand, and captured from the running gateway (tests/support/rule_captures.py).
RULES_UNIT_TESTS = (
    Path(__file__).with_name("rules_test.yml"),
    Path(__file__).with_name("rules_test_captured.yml"),
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    assert executable, (
        "promtool not found: run `make tools` (it installs Debian's prometheus package)"
    )
    return subprocess.run([executable, *args], capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_fire_as_their_unit_tests_expect() -> None:
    result = promtool("test", "rules", *map(str, RULES_UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_some_unit_test() -> None:
    fired = {
        check["alertname"]
        for path in RULES_UNIT_TESTS
        for case in yaml.safe_load(path.read_text())["tests"]
        for check in case.get("alert_rule_test", [])
        if check["exp_alerts"]
    }
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
        for rule in group["rules"]
    }
    assert set() == alerts - fired


def test_compose_scrape_config_passes_promtool_check() -> None:
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_query_only_known_metrics() -> None:
    assert set() == rule_metric_names() - KNOWN_RULE_METRICS


def test_every_service_has_a_down_alert() -> None:
    rules = [
        rule
        for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
        for rule in group["rules"]
    ]
    for job in SERVICES:
        assert any(f'absent(up{{job="{job}"}})' in rule["expr"] for rule in rules), job


def test_every_alert_has_severity_and_summary() -> None:
    for group in yaml.safe_load(RULES_FILE.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_the_prometheus_rule_object_is_generated_from_the_rules_file() -> None:
    assert prometheus_rule.rendered() == prometheus_rule.TARGET.read_text(), (
        "run: python -m devtools.prometheus_rule"
    )


def test_hand_written_series_carry_only_the_labels_their_metric_has() -> None:
    declared = lanegate_label_names()
    for case in yaml.safe_load(RULES_UNIT_TESTS[0].read_text())["tests"]:
        for series in case["input_series"]:
            name, _, labels = series["series"].partition("{")
            if name.startswith("lanegate_"):
                used = {pair.split("=")[0].strip() for pair in labels.rstrip("}").split(",")}
                assert used <= declared[name], series["series"]
