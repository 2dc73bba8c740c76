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


def test_base_image_is_a_python_3_13_slim_pinned_by_digest() -> None:
    assert re.search(
        r"^ARG PYTHON_IMAGE=python:3\.13\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$",
        DOCKERFILE.read_text(),
        re.MULTILINE,
    )
    assert [stage[0] for stage in stages()] == [
        "FROM ${PYTHON_IMAGE} AS build",
        "FROM ${PYTHON_IMAGE}",
    ]


def test_build_stage_installs_dependencies_before_the_source_without_a_compiler() -> None:
    build = stages()[0]
    joined = " ".join(build)
    assert "python -m venv /opt/venv" in joined
    assert "build-essential" not in joined and "apt-get" not in joined
    copies = [line for line in build if line.startswith("COPY ")]
    assert "COPY constraints.txt pyproject.toml ./" == copies[0]
    installs = [i for i, line in enumerate(build) if "pip install" in line]
    source = build.index("COPY libs libs")
    assert installs[0] < source < installs[-1]
    assert "-c constraints.txt -r requirements.txt" in build[installs[0]]
    assert "pip install --no-deps -c constraints.txt ." in build[installs[-1]]
    assert all("--mount=type=cache,target=/root/.cache/pip" in build[i] for i in installs)


def test_final_stage_carries_oci_labels() -> None:
    labels = " ".join(line for line in stages()[-1] if line.startswith("LABEL "))
    for name in ("title", "description", "version", "revision", "base.name"):
        assert f"org.opencontainers.image.{name}=" in labels


def test_final_stage_has_no_build_tools_and_runs_unprivileged() -> None:
    final = stages()[-1]
    assert not any("apt-get install" in line or "pip install" in line for line in final)
    assert "COPY --from=build /opt/venv /opt/venv" in final
    user = [line for line in final if line.startswith("USER ")]
    assert user == ["USER 10001:10001"]


def test_healthcheck_asks_the_running_service_and_ingress_is_the_default() -> None:
    final = " ".join(stages()[-1])
    healthcheck = next(line for line in stages()[-1] if line.startswith("HEALTHCHECK "))
    assert healthcheck.endswith('CMD ["python", "-m", "lanegate.healthcheck"]')
    assert "LANEGATE_HEALTH_PORT" not in final
    assert stages()[-1][-1] == 'CMD ["python", "-m", "ingress_api"]'


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", "tests", "deploy", "**/__pycache__", "var", ".venv"} <= ignored
