"""Hostile bodies on every declared endpoint that takes one: a 4xx in the seed's shape, and
nothing stored. New endpoints are covered as soon as they are declared."""

import io
import json
import re
import uuid
from typing import Any

import pytest

import ingress_api.main  # noqa: F401  (declares every endpoint)
from ingress_api.registry import API, Endpoint
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver
from tests.support.tenant_data import tenant_data

pytestmark = pytest.mark.e2e

WITH_BODY = [e for e in API.endpoints if e.body is not None]
MAX_BODY = 1024 * 1024

HOSTILE: dict[str, tuple[bytes, str, int]] = {
    "oversized": (b'{"text": "' + b"x" * (MAX_BODY + 1) + b'"}', "application/json", 413),
    "deeply nested": (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400),
    "invalid utf-8": (b'{"text": "\xff\xfe\xc3\x28"}', "application/json", 400),
    "wrong content type": (b'{"text": "hi"}', "text/plain", 415),
    "form content type": (b"text=hi", "application/x-www-form-urlencoded", 415),
    "json array": (b"[1, 2, 3]", "application/json", 400),
}

BAD_WEBHOOK_URLS = [
    "https://example.com/hook\r\nX-Injected: 1",
    "https://example.com/hook\nX-Injected: 1",
    "https://example.com/ho ok",
    "https://example.com/hook\t",
    "https://user:password@example.com/hook",
    "https://example.com/hook\r\n",
    " https://example.com/hook\r",
    "javascript:alert(1)",
    "ftp://example.com/hook",
]


@pytest.fixture
async def owner(gateway: Gateway, receiver: Receiver) -> dict[str, str]:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    status, contact = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": "5491100000001"}
    )
    assert status in (200, 201), contact
    status, group = await gateway.call("POST", "/groups", key=key, json={"name": "hostile"})
    assert status in (200, 201), group
    return {
        "tenant": tenant_id,
        "key": key,
        "name": name,
        "contact": contact["id"],
        "group": group["id"],
    }


def _path(endpoint: Endpoint, owner: dict[str, str]) -> str:
    """The endpoint's path with the owner's own resources in it."""
    values = {
        "name": owner["name"],
        "instanceName": owner["name"],
        "id": owner["tenant"]
        if endpoint.auth == "admin"
        else owner["group"]
        if endpoint.path.startswith("/groups/")
        else owner["contact"],
        "keyId": "0000",
        "clientId": "support",
        "phone": "5491100000001",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], uuid.uuid4().hex), endpoint.path)


def _key(gateway: Gateway, endpoint: Endpoint, owner: dict[str, str]) -> str:
    return gateway.admin_key if endpoint.auth == "admin" else owner["key"]


def _seed_error(status: int, answer: Any, endpoint: Endpoint) -> None:
    """The seed-004 error body: 400 lists issues, every other 4xx names an error and a code;
    a route speaking another gateway's API answers in that API's error body."""
    assert 400 <= status < 500
    if endpoint.error_shape is not None:
        endpoint.error_shape.model.model_validate(answer)
        return
    assert isinstance(answer, dict) and isinstance(answer["error"], str)
    if status == 400:
        assert "Validation error" == answer["error"]
        assert all({"path", "message"} <= issue.keys() for issue in answer["issues"])
    else:
        assert isinstance(answer["code"], str)


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_bodies_get_a_4xx_and_store_nothing(
    gateway: Gateway, owner: dict[str, str], case: str
) -> None:
    raw, content_type, expected = HOSTILE[case]
    before = await tenant_data(gateway, owner["tenant"])
    seen = {}
    for endpoint in WITH_BODY:
        status, answer = await gateway.call(
            endpoint.method,
            _path(endpoint, owner),
            key=_key(gateway, endpoint, owner),
            data=io.BytesIO(raw),
            headers={"content-type": content_type},
        )
        _seed_error(status, answer, endpoint)
        seen[f"{endpoint.method} {endpoint.path}"] = status
    assert {k: expected for k in seen} == seen
    assert before == await tenant_data(gateway, owner["tenant"])


def _takes_webhook_url(endpoint: Endpoint) -> bool:
    assert endpoint.body is not None
    # Bulk items are checked one by one as the sends they name, so its schema is looser.
    return endpoint.path == "/message/bulk" or "webhookUrl" in json.dumps(
        endpoint.body.model_json_schema()
    )


def _body_with(endpoint: Endpoint, owner: dict[str, str], url: str) -> dict[str, Any]:
    """A body that is right but for its webhook URL."""
    send = {
        "instanceName": owner["name"],
        "to": "5491112345678",
        "text": "hi",
        "type": "text",
        "clientId": "support",
        "webhookUrl": url,
    }
    if endpoint.path == "/message/bulk":
        return {"messages": [send]}
    if endpoint.path == "/instance/create":
        name = f"{owner['tenant']}__support__{uuid.uuid4().hex[:6]}"
        return {"instanceName": name, "webhookUrl": url, "webhookSecret": "s" * 20}
    if endpoint.method == "PATCH":
        return {"webhookUrl": url}
    return send


def _names_webhook_url(answer: dict[str, Any]) -> bool:
    return any("webhookUrl" in issue["path"] for issue in answer.get("issues", []))


async def test_every_body_with_a_webhook_url_refuses_header_injection_and_credentials(
    gateway: Gateway, owner: dict[str, str]
) -> None:
    endpoints = [e for e in WITH_BODY if _takes_webhook_url(e)]
    assert {"/instance/create", "/instance/{name}", "/message/text", "/message/bulk"} <= {
        e.path for e in endpoints
    }
    before = await tenant_data(gateway, owner["tenant"])
    refused = {}
    for endpoint in endpoints:
        for url in BAD_WEBHOOK_URLS:
            status, answer = await gateway.call(
                endpoint.method,
                _path(endpoint, owner),
                key=owner["key"],
                json=_body_with(endpoint, owner, url),
            )
            _seed_error(status, answer, endpoint)
            refused[(endpoint.path, url)] = (status, _names_webhook_url(answer))
    assert {k: (400, True) for k in refused} == refused
    assert before == await tenant_data(gateway, owner["tenant"])


@pytest.mark.parametrize(
    ("path", "header"), [("cloud", "X-Hub-Signature-256"), ("waha", "X-Webhook-Hmac")]
)
async def test_a_non_ascii_callback_signature_is_401_not_500(
    gateway: Gateway, owner: dict[str, str], path: str, header: str
) -> None:
    provider = {"cloud": "cloud_api", "waha": "waha"}[path]
    async with gateway.mongo() as client:
        await client.lanegate_test.instances.update_one(
            {"_id": owner["name"]},
            {"$set": {"provider": provider, "providerConfig": {"appSecret": "a", "hmacKey": "k"}}},
        )
    status, answer = await gateway.call(
        "POST",
        f"/webhooks/{path}/{owner['name']}",
        data=b"{}",
        headers={"content-type": "application/json", header: "sha256=\u00e9\u00e9"},
    )
    assert (401, "UNAUTHORIZED") == (status, answer["code"])
