"""Deployment hardening: network policies, per-service credentials, required keys."""

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.dashboard_metrics import REPO
from tests.deploy.service_facts import SERVICES
from tests.deploy.test_compose import lanegate_services
from tests.deploy.test_kustomize import OVERLAYS, built, find, one

Object = dict[str, Any]

INTERNET_CALLERS = {"provider-sender", "webhook-dispatcher", "template-sync"}
BROKER, STORE, DNS = ("rabbitmq", 5672), ("mongodb", 27017), ("kube-dns", 53)
# Addresses no tenant-given call may reach: private ranges, CGNAT, link-local, loopback.
FORBIDDEN = [
    "10.0.0.1",
    "10.255.1.2",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "100.64.0.1",
    "100.127.255.254",
    "169.254.169.254",
    "169.254.0.1",
    "127.0.0.1",
    "fd00::1",
    "fe80::1",
    "fec0::1",
    "::1",
    "::ffff:10.0.0.1",
    "64:ff9b:1::a00:1",
]
PUBLIC = ["8.8.8.8", "157.240.1.1", "2a03:2880:f003:c07:face:b00c::2"]


def _policy(objects: list[Object], service: str) -> Object:
    """The one NetworkPolicy selecting the service's pods (and no other service's)."""
    selecting = []
    for policy in find(objects, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]["matchLabels"]
        pods = [
            name
            for name in SERVICES
            if selector.items()
            <= one(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"].items()
        ]
        if service in pods:
            assert [service] == pods, policy["metadata"]["name"]
            selecting.append(policy)
    assert 1 == len(selecting), service
    return selecting[0]


def _ports(rule: Object) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def _peer_apps(rule: Object, direction: str) -> set[str]:
    """The `app.kubernetes.io/name` (or `k8s-app`) of the pods a rule's peers select."""
    apps = set()
    for peer in rule.get(direction, []):
        labels = peer.get("podSelector", {}).get("matchLabels", {})
        apps |= {labels[k] for k in ("app.kubernetes.io/name", "k8s-app") if k in labels}
    return apps


def _reaches_address(policy: Object, address: str, port: int) -> bool:
    """Whether an egress rule lets the pods reach a raw address (not a selected pod)."""
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"].get("egress", []):
        if rule.get("ports") and ("TCP", port) not in _ports(rule):
            continue
        if "to" not in rule:
            return True
        for peer in rule["to"]:
            block = peer.get("ipBlock")
            if block is None:
                continue
            network = ipaddress.ip_network(block["cidr"])
            if ip.version != network.version or ip not in network:
                continue
            excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
            if not any(ip.version == e.version and ip in e for e in excepted):
                return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_service_reaches_dns_the_broker_and_the_store_and_is_scraped(
    overlay: str, service: str
) -> None:
    objects = built(overlay)
    spec = _policy(objects, service)["spec"]
    assert {"Ingress", "Egress"} == set(spec["policyTypes"])
    egress = spec["egress"]
    for app, port in (BROKER, STORE):
        assert any(app in _peer_apps(r, "to") and ("TCP", port) in _ports(r) for r in egress)
    dns = [r for r in egress if DNS[0] in _peer_apps(r, "to")]
    assert dns and {("UDP", 53), ("TCP", 53)} <= set().union(*(_ports(r) for r in dns))
    port = SERVICES[service][1]
    scraped = [r for r in spec["ingress"] if ("TCP", port) in _ports(r)]
    assert scraped and all(
        "from" not in r or "prometheus" in _peer_apps(r, "from") for r in scraped
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_ingress_api_takes_traffic_from_outside(overlay: str) -> None:
    objects = built(overlay)
    for service in SERVICES:
        rules = _policy(objects, service)["spec"]["ingress"]
        open_rules = [r for r in rules if "from" not in r]
        if service == "ingress-api":
            assert [{("TCP", 8080)}] == [_ports(r) for r in open_rules]
        else:
            assert [] == open_rules, service
            assert all(_peer_apps(r, "from") == {"prometheus"} for r in rules), service
            assert all("ipBlock" not in peer for r in rules for peer in r["from"]), service


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_only_the_callers_of_tenant_addresses_reach_the_internet_and_never_private_ranges(
    overlay: str, service: str
) -> None:
    policy = _policy(built(overlay), service)
    for address in FORBIDDEN:
        for port in (80, 443, 8080, 5672, 27017):
            assert not _reaches_address(policy, address, port), (service, address, port)
    for address in PUBLIC:
        assert (service in INTERNET_CALLERS) == _reaches_address(policy, address, 443), address


def test_the_address_check_sees_a_hole() -> None:
    policy = {"spec": {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}
    assert _reaches_address(policy, "169.254.169.254", 80)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_own_broker_and_store_credentials(overlay: str) -> None:
    objects = built(overlay)
    seen: dict[str, set[str]] = {"LANEGATE_AMQP_URL": set(), "LANEGATE_MONGO_URI": set()}
    for service in SERVICES:
        container = one(objects, "Deployment", service)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert not any("secretRef" in source for source in container["envFrom"])
        for name, keys in seen.items():
            key = env[name]["valueFrom"]["secretKeyRef"]["key"]
            assert service in key and key not in keys, (service, name)
            keys.add(key)
        assert ("LANEGATE_ADMIN_KEY" in env) == (service == "ingress-api")
        assert "secret-key" == env["LANEGATE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"]
    for secret in find(objects, "Secret", "lanegate-secrets"):
        data = secret["stringData"]
        for suffix in ("-amqp-url", "-mongo-uri"):
            users = {urlsplit(data[service + suffix]).username for service in SERVICES}
            assert len(SERVICES) == len(users - {None}), suffix
        assert len(data["admin-key"]) >= 32


def test_compose_refuses_to_start_without_the_two_keys() -> None:
    for name, service in lanegate_services().items():
        env = service["environment"]
        for variable in ("LANEGATE_ADMIN_KEY", "LANEGATE_SECRET_KEY"):
            assert env[variable].startswith(f"${{{variable}:?"), (name, variable)


def test_an_env_example_names_the_required_keys() -> None:
    example = (REPO / ".env.example").read_text()
    assigned = {
        line.split("=", 1)[0] for line in example.splitlines() if re.match(r"^[A-Z_]+=", line)
    }
    assert {"LANEGATE_ADMIN_KEY", "LANEGATE_SECRET_KEY"} <= assigned
    assert ".env" in (REPO / ".gitignore").read_text().split()
