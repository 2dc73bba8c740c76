"""The GitHub workflow parses and gives `make test` the services the suite needs."""

from typing import Any
from urllib.parse import urlsplit

import yaml

from devtools.stack import StoreEngine

from .dashboard_metrics import REPO

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def job() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    [only] = workflow["jobs"].values()
    return dict(only)


def test_the_workflow_runs_make_test_on_python_3_13_within_an_hour() -> None:
    test = job()
    steps = test["steps"]

    assert ["make test"] == [s["run"] for s in steps if s.get("run", "").startswith("make")]
    [python] = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert "3.13" == python["with"]["python-version"]
    assert test["timeout-minutes"] <= 60


def test_mongodb_and_rabbitmq_run_beside_it_on_the_ports_the_suite_uses() -> None:
    services = job()["services"]

    assert {"mongo:8", "rabbitmq:4-management"} == {s["image"] for s in services.values()}
    ports = {s["image"]: {p.split(":")[0] for p in s["ports"]} for s in services.values()}
    assert "27017" in ports["mongo:8"]
    assert "5672" in ports["rabbitmq:4-management"]


def test_the_suite_is_pointed_at_the_mongodb_service() -> None:
    chosen = StoreEngine.from_environment(job()["env"])

    assert "uri" == chosen.engine
    assert ("127.0.0.1", 27017) == (urlsplit(chosen.uri).hostname, urlsplit(chosen.uri).port)
