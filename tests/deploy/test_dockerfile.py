"""The Dockerfile builds one hardened image for all services."""

import re

from .dashboard_metrics import REPO

DOCKERFILE = REPO / "Dockerfile"


def stages() -> list[list[str]]:
    """Return the Dockerfile's instructions grouped by stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    groups: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            groups.append([])
        if groups:
            groups[-1].append(line)
    return groups


def test_base_image_is_a_pinned_python_3_13_slim() -> None:
    assert re.search(
        r"^ARG PYTHON_IMAGE=python:3\.13\.\d+-slim-bookworm$", DOCKERFILE.read_text(), re.MULTILINE
    )
    assert [stage[0] for stage in stages()] == [
        "FROM ${PYTHON_IMAGE} AS build",
        "FROM ${PYTHON_IMAGE}",
    ]


def test_build_stage_installs_the_project_with_constraints_into_a_venv() -> None:
    build = " ".join(stages()[0])
    assert "python -m venv /opt/venv" in build
    assert "pip install -c constraints.txt ." in build


def test_final_stage_has_no_build_tools_and_runs_unprivileged() -> None:
    final = stages()[-1]
    assert not any("apt-get install" in line or "pip install" in line for line in final)
    assert "COPY --from=build /opt/venv /opt/venv" in final
    user = [line for line in final if line.startswith("USER ")]
    assert user == ["USER 10001:10001"]


def test_healthcheck_probes_healthz_on_the_configured_port_and_ingress_is_the_default() -> None:
    final = " ".join(stages()[-1])
    assert "HEALTHCHECK" in final and "/healthz" in final and "LANEGATE_HEALTH_PORT" in final
    assert stages()[-1][-1] == 'CMD ["python", "-m", "ingress_api"]'


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", "tests", "deploy", "**/__pycache__"} <= ignored
