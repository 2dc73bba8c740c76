"""Bad input on /message/text: a clear error in the seed's format; nothing stored or published."""

import io
import json
from typing import Any

import pytest

from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

JSON = {"content-type": "application/json"}
GOOD = {"to": "5491112345678", "text": "hello", "lane": "normal"}


@pytest.fixture
async def setup(gateway: Gateway, receiver: Receiver) -> dict[str, str]:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    other = await gateway.tenant_with_instance(receiver.url(), connect=False)
    return {"key": key, "name": name, "tenant": tenant_id, "other": other.name}


async def _counts(gateway: Gateway) -> tuple[int, float]:
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.messages.count_documents({})
    published = await gateway.metric(
        "ingress_api", "lanegate_events_published_total", routing_key="message.accepted"
    )
    return stored, published


CASES: list[tuple[str, dict[str, Any], int, list[str] | None]] = [
    ("missing text", {"text": None}, 400, ["text"]),
    ("to that cannot exist", {"to": "+999 1234 5678"}, 400, ["to"]),
    ("to too short", {"to": "1234"}, 400, ["to"]),
    ("unknown lane", {"lane": "express"}, 400, ["lane"]),
    ("unbalanced spintax", {"text": "{Hello|Hi"}, 400, ["text"]),
    ("unknown field", {"colour": "red"}, 400, ["colour"]),
]


@pytest.mark.parametrize(("case", "change", "status", "path"), CASES, ids=[c[0] for c in CASES])
async def test_invalid_body_is_400_with_issues_and_changes_nothing(
    gateway: Gateway,
    setup: dict[str, str],
    case: str,
    change: dict[str, Any],
    status: int,
    path: list[str] | None,
) -> None:
    body = {"instanceName": setup["name"], **GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    before = await _counts(gateway)

    got, answer = await gateway.call("POST", "/message/text", key=setup["key"], json=body)

    assert status == got
    assert "Validation error" == answer["error"]
    assert path == answer["issues"][0]["path"]
    assert answer["issues"][0]["message"]
    assert before == await _counts(gateway)


async def test_unknown_instance_is_404(gateway: Gateway, setup: dict[str, str]) -> None:
    before = await _counts(gateway)
    body = {"instanceName": f"{setup['tenant']}__support__nope", **GOOD}
    status, answer = await gateway.call("POST", "/message/text", key=setup["key"], json=body)
    assert (404, "NOT_FOUND") == (status, answer["code"])
    assert before == await _counts(gateway)


async def test_another_tenants_instance_is_403(gateway: Gateway, setup: dict[str, str]) -> None:
    before = await _counts(gateway)
    body = {"instanceName": setup["other"], **GOOD}
    status, answer = await gateway.call("POST", "/message/text", key=setup["key"], json=body)
    assert (403, "FORBIDDEN") == (status, answer["code"])
    assert before == await _counts(gateway)


@pytest.mark.parametrize("key", [None, "lg_wrong-key"])
async def test_missing_or_wrong_key_is_401(
    gateway: Gateway, setup: dict[str, str], key: str | None
) -> None:
    before = await _counts(gateway)
    body = {"instanceName": setup["name"], **GOOD}
    status, answer = await gateway.call("POST", "/message/text", key=key, json=body)
    assert (401, "UNAUTHORIZED") == (status, answer["code"])
    assert before == await _counts(gateway)


async def test_body_that_is_not_json_is_400(gateway: Gateway, setup: dict[str, str]) -> None:
    status, answer = await gateway.call(
        "POST", "/message/text", key=setup["key"], data=b"{not json", headers=JSON
    )
    assert (400, []) == (status, answer["issues"][0]["path"])


async def test_body_over_one_mebibyte_is_413(gateway: Gateway, setup: dict[str, str]) -> None:
    body = {"instanceName": setup["name"], **GOOD, "text": "x" * (1024 * 1024 + 1)}
    raw = io.BytesIO(json.dumps(body).encode())
    status, answer = await gateway.call(
        "POST", "/message/text", key=setup["key"], data=raw, headers=JSON
    )
    assert (413, "PAYLOAD_TOO_LARGE") == (status, answer["code"])


async def test_other_tenants_message_id_reads_as_not_found(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_a, key_a = await gateway.tenant()
    name = await gateway.instance(tenant_a, key_a, receiver.url(), connect=False)
    _, accepted = await gateway.call(
        "POST", "/message/text", key=key_a, json={"instanceName": name, **GOOD}
    )
    _, key_b = await gateway.tenant()
    status, answer = await gateway.call("GET", f"/message/{accepted['id']}", key=key_b)
    assert (404, "NOT_FOUND") == (status, answer["code"])
