"""`python -m devtools.prometheus_rule`: write deploy/k8s/base/prometheus-rule.yaml, the
Prometheus Operator's PrometheusRule holding deploy/prometheus/rules.yml's groups unchanged."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
TARGET = REPO / "deploy" / "k8s" / "base" / "prometheus-rule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/rules.yml by `python -m devtools.prometheus_rule`;\n"
    "# edit the rules there and run it again (tests/deploy checks the two agree).\n"
)


def rendered() -> str:
    """The PrometheusRule object for the rules file, as YAML text."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "lanegate", "labels": {"app.kubernetes.io/name": "lanegate"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(rule, sort_keys=False, width=100, allow_unicode=True)


def main() -> None:
    TARGET.write_text(rendered())
    print(f"wrote {TARGET.relative_to(REPO)}")


if __name__ == "__main__":
    main()
