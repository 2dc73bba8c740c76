"""Tenant isolation on every declared endpoint with a path parameter: tenant B naming tenant A's
resources gets 403 for an instance name in A's namespace and 404 for an id, sees none of A's
data where a parameter only filters B's own, and changes nothing A holds."""

import json
import re
import uuid
from typing import Any

import pytest

import ingress_api.main  # noqa: F401  (declares every endpoint)
from ingress_api.registry import API, Endpoint
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver
from tests.support.tenant_data import tenant_data

pytestmark = pytest.mark.e2e

PHONE = "5491100000002"
WITH_PARAMETERS = [e for e in API.endpoints if "{" in e.path]

# Valid bodies, so that nothing but ownership can refuse the call.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/instance/{name}"): {"displayName": "taken over"},
    ("PATCH", "/contacts/{id}/status"): {"active": False, "reason": "taken over"},
    ("PATCH", "/api/contacts/{id}/status"): {"active": False, "reason": "taken over"},
    ("PATCH", "/contacts/{id}"): {"name": "taken over"},
    ("PATCH", "/sources/{id}"): {"name": "taken over"},
    ("PATCH", "/statuses/{id}"): {"name": "taken over"},
    ("POST", "/contacts/{id}/comments"): {"text": "taken over"},
    ("PATCH", "/groups/{id}"): {"name": "taken over"},
    ("POST", "/sandbox/{name}/inbound"): {"from": PHONE, "text": "hi"},
    ("POST", "/sandbox/{name}/ban"): {"reason": "taken over"},
    ("POST", "/sandbox/{name}/fault"): {"kind": "error", "seconds": 1},
    ("POST", "/instance/{name}/pairing-code"): {"phoneNumber": "5491112345678"},
    ("POST", "/api/v1/leads/{id}/send-whatsapp"): {"message": "taken over"},
    ("POST", "/api/v1/leads/{id}/send-whatsapp-template"): {"template_id": 1, "variables": []},
}


def _rule(endpoint: Endpoint) -> str:
    """What tenant B must get on this endpoint with A's resource in the path."""
    names = set(re.findall(r"\{(\w+)\}", endpoint.path))
    if endpoint.auth == "admin":
        return "401"  # a tenant key is no operator key
    if endpoint.auth == "none":
        return "signed"  # provider callbacks: checked by signature, see test_provider_callbacks
    if names & {"name", "instanceName", "connectorId"}:
        return "403"
    if names == {"id"}:
        return "404"
    if names <= {"clientId", "phone"}:
        return "own data only"
    raise AssertionError(f"no isolation rule for {endpoint.method} {endpoint.path}")


@pytest.fixture
async def tenant_a(gateway: Gateway, receiver: Receiver) -> dict[str, str]:
    """Tenant A with one of each resource: an open instance (and its delivered webhook), a
    closed one holding a pending message, a contact and a template."""
    tenant_id, key = await gateway.tenant()
    open_name = await gateway.instance(tenant_id, key, receiver.url(), connect=True)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, message = await gateway.call(
        "POST", "/message/text", key=key, json={"instanceName": name, "to": PHONE, "text": "A"}
    )
    assert 202 == status, message
    status, contact = await gateway.call("POST", "/contacts", key=key, json={"identifier": PHONE})
    assert status in (200, 201), contact
    _, source = await gateway.call("POST", "/sources", key=key, json={"name": "A's ads"})
    _, lead_status = await gateway.call("POST", "/statuses", key=key, json={"name": "A's new"})
    _, group = await gateway.call("POST", "/groups", key=key, json={"name": "A's group"})
    template_id = f"tpl-{uuid.uuid4().hex[:8]}"
    async with gateway.mongo() as client:
        await client.lanegate_test.templates.insert_one(
            {"_id": template_id, "tenantId": tenant_id, "instanceName": name, "name": "a_only"}
        )

    async def delivered() -> bool:
        _, found = await gateway.call(
            "GET", f"/webhooks/deliveries?instanceName={open_name}", key=key
        )
        return any(d["status"] == "delivered" for d in found["deliveries"])

    await eventually(delivered)
    _, found = await gateway.call("GET", f"/webhooks/deliveries?instanceName={open_name}", key=key)
    return {
        "tenant": tenant_id,
        "key": key,
        "name": name,
        "open": open_name,
        "message": message["id"],
        "contact": contact["id"],
        "template": template_id,
        "source": source["id"],
        "status": lead_status["id"],
        "group": group["id"],
        "delivery": found["deliveries"][0]["id"],
        "clientId": "support",
        "phone": PHONE,
        "keyId": "0000",
        "queue": "webhook-dispatcher",  # the operator's dead letters
    }


def _path(endpoint: Endpoint, a: dict[str, str]) -> str:
    """The path with tenant A's resource of the kind it names."""
    path = endpoint.path
    if path.startswith("/message/"):
        kind = "message"
    elif path.startswith(("/contacts/", "/api/contacts/", "/api/v1/leads/")):
        kind = "contact"
    elif path.startswith("/templates/"):
        kind = "template"
    elif path.startswith("/groups/"):
        kind = "group"
    elif path.startswith("/sources/"):
        kind = "source"
    elif path.startswith("/statuses/"):
        kind = "status"
    elif path.startswith("/webhooks/deliveries/"):
        kind = "delivery"
    elif path.startswith("/admin/"):
        kind = "tenant"
    else:
        kind = "id"
    values = {**a, "id": a.get(kind, ""), "instanceName": a["name"], "connectorId": a["name"]}
    if path.startswith("/sandbox/") and path.endswith("/disconnect"):
        values["name"] = a["open"]  # the one with something to take away
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


async def test_every_endpoint_with_a_path_parameter_has_an_isolation_rule() -> None:
    rules = {f"{e.method} {e.path}": _rule(e) for e in WITH_PARAMETERS}
    assert {"403", "404", "own data only", "401", "signed"} == set(rules.values())


async def test_tenant_b_cannot_reach_tenant_a_through_any_path_parameter(
    gateway: Gateway, tenant_a: dict[str, str]
) -> None:
    _, key_b = await gateway.tenant()
    before = await tenant_data(gateway, tenant_a["tenant"])
    got: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    leaked = {tenant_a[k] for k in ("name", "open", "message", "contact", "template")}
    for endpoint in WITH_PARAMETERS:
        rule = _rule(endpoint)
        if rule == "signed":
            continue
        where = f"{endpoint.method} {endpoint.path}"
        status, answer = await gateway.call(
            endpoint.method,
            _path(endpoint, tenant_a),
            key=key_b,
            json=BODIES.get((endpoint.method, endpoint.path)),
        )
        text = json.dumps(answer)
        if rule == "own data only":
            expected[where] = (True, set())
            got[where] = (status in (200, 404), {v for v in leaked if v in text})
        else:
            expected[where] = int(rule)
            got[where] = status
            assert isinstance(answer, dict) and isinstance(answer.get("code"), str), where
    assert expected == got
    assert before == await tenant_data(gateway, tenant_a["tenant"])


def _body_naming(endpoint: Endpoint, a: dict[str, str]) -> dict[str, Any]:
    """A valid body for the endpoint that names tenant A's instance."""
    send = {"instanceName": a["name"], "to": PHONE, "text": "hi"}
    bodies: dict[str, dict[str, Any]] = {
        "/instance/create": {
            "instanceName": f"{a['tenant']}__support__{uuid.uuid4().hex[:6]}",
            "webhookUrl": "https://example.com/hook",
            "webhookSecret": "s" * 20,
        },
        "/message/text": send,
        "/message/bulk": {"messages": [send]},
        "/message/image": {**send, "text": None, "imageUrl": "https://example.com/a.jpg"},
        "/message/location": {
            **send,
            "text": None,
            "latitude": -34.6,
            "longitude": -58.4,
        },
        "/templates/sync": {"instanceName": a["name"]},
        "/webhooks/replay": {
            "instanceName": a["name"],
            "since": "2020-01-01T00:00:00Z",
            "status": "dead",
        },
    }
    return {k: v for k, v in bodies[endpoint.path].items() if v is not None}


async def test_tenant_b_naming_tenant_a_instance_in_a_body_gets_403(
    gateway: Gateway, tenant_a: dict[str, str]
) -> None:
    _, key_b = await gateway.tenant()
    before = await tenant_data(gateway, tenant_a["tenant"])
    paths = ["/instance/create", "/message/text", "/message/bulk", "/message/image"]
    paths += ["/message/location", "/templates/sync", "/webhooks/replay"]
    endpoints = [e for e in API.endpoints if e.method == "POST" and e.path in paths]
    got = {}
    for endpoint in endpoints:
        status, answer = await gateway.call(
            "POST", endpoint.path, key=key_b, json=_body_naming(endpoint, tenant_a)
        )
        got[endpoint.path] = status if status != 400 else answer["issues"]
    # Bulk answers 400 listing each bad item, here the one naming A's instance.
    refused_item = [
        {
            "path": ["messages", 0, "instanceName"],
            "message": "The instanceName must start with your tenantId",
        }
    ]
    assert {**dict.fromkeys(paths, 403), "/message/bulk": refused_item} == got
    assert before == await tenant_data(gateway, tenant_a["tenant"])
