"""docker-compose.yml parses and references only images, ports, env vars and services that exist."""

import re
from typing import Any

import yaml

from .dashboard_metrics import REPO
from .service_facts import PORT_BY_MODULE, SERVICES, SETTINGS

COMPOSE_FILE = REPO / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
# Ports the third-party images listen on.
IMAGE_PORTS = {
    "mongo": {27017},
    "rabbitmq": {5672, 15672, 15692},
    "prom/prometheus": {9090},
    "grafana/grafana": {3000},
    "axllent/mailpit": {1025, 8025},
}
PINNED_TAG = re.compile(r"^[\w.-]*\d[\w.-]*$")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def lanegate_services() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services().items() if "build" in service}


def module_of(service: dict[str, Any]) -> str:
    command = service["command"]
    assert command[:2] == ["python", "-m"] and len(command) == 3, command
    return str(command[2])


def listening_ports(service: dict[str, Any]) -> set[int]:
    if "build" in service:
        return {PORT_BY_MODULE[module_of(service)]}
    repository = service["image"].rpartition(":")[0]
    return IMAGE_PORTS[repository]


def container_port(published: str) -> int:
    return int(str(published).rsplit(":", 1)[1].split("/")[0])


def test_pulled_images_are_pinned_and_builds_use_the_dockerfile() -> None:
    for name, service in services().items():
        repository, _, tag = service["image"].rpartition(":")
        assert repository and tag and tag != "latest", (name, service["image"])
        if "build" in service:
            assert repository == "lanegate"
            assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        else:
            assert PINNED_TAG.match(tag), (name, service["image"])


def test_the_five_services_run_with_two_schedulers() -> None:
    modules = sorted(module_of(service) for service in lanegate_services().values())
    expected = sorted([module for module, _ in SERVICES.values()] + ["lane_scheduler"])
    assert expected == modules


def test_published_ports_are_ports_the_containers_listen_on() -> None:
    for name, service in services().items():
        for published in service.get("ports", []):
            assert container_port(published) in listening_ports(service), (name, published)


def test_every_service_has_a_healthcheck_on_a_real_port() -> None:
    for name, service in services().items():
        test = " ".join(service["healthcheck"]["test"])
        assert service["healthcheck"]["test"][0] == "CMD", name
        if "build" in service:
            port = PORT_BY_MODULE[module_of(service)]
            assert f"http://127.0.0.1:{port}/healthz" in test, name
        for port in re.findall(r"127\.0\.0\.1:(\d+)", test):
            assert int(port) in listening_ports(service), (name, port)


def test_lanegate_env_vars_are_known_settings() -> None:
    for name, service in services().items():
        variables = {key for key in service.get("environment", {}) if key.startswith("LANEGATE_")}
        assert set() == variables - SETTINGS, name
    for service in lanegate_services().values():
        assert {
            "LANEGATE_AMQP_URL",
            "LANEGATE_MONGO_URI",
            "LANEGATE_ADMIN_KEY",
            "LANEGATE_SECRET_KEY",
        } <= service["environment"].keys()


def test_providers_call_back_to_ingress_api_not_to_the_container_itself() -> None:
    for service in lanegate_services().values():
        public = service["environment"]["LANEGATE_PUBLIC_URL"]
        assert "${LANEGATE_PUBLIC_URL:-http://ingress-api:8080}" == public
    assert "ingress-api" in services()


def test_depends_on_targets_exist_and_wait_for_health() -> None:
    names = services().keys()
    for name, service in services().items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), name
        for target, condition in depends_on.items():
            assert target in names, (name, target)
            assert condition["condition"] == "service_healthy"
            assert "healthcheck" in services()[target]


def test_volumes_are_named_or_existing_repo_paths() -> None:
    declared = compose()["volumes"].keys()
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    stateful = {"mongo", "rabbitmq", "prometheus", "grafana"}
    for name in stateful:
        assert any(v.split(":")[0] in declared for v in services()[name]["volumes"]), name


def test_lanegate_containers_are_read_only_and_unprivileged() -> None:
    for name, service in lanegate_services().items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "/tmp" in service["tmpfs"], name


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target: job["job_name"]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert int(port) in listening_ports(services()[host]) | {15692}, target
    for name, service in lanegate_services().items():
        module = module_of(service)
        job = next(job for job, (mod, _) in SERVICES.items() if mod == module)
        assert job == targets[f"{name}:{PORT_BY_MODULE[module]}"]
    assert (
        next(j for j in config["scrape_configs"] if j["job_name"] == "rabbitmq")["metrics_path"]
        == "/metrics/per-object"
    )
