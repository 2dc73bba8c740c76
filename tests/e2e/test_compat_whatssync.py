"""The WhatsSync Chat API under /api/v1: its documented examples (tests/contracts/whatssync/)
run against the gateway, every parameter and error, on the same accept and reads as the
native routes."""

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_cloud_api import CONTACT
from tests.e2e.test_templates import meta_template, synced
from tests.simulators.meta import MetaSimulator
from tests.support.gateway import Gateway
from tests.support.keys import scoped_key
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

CONTRACTS = Path(__file__).parent.parent / "contracts" / "whatssync"
# The documentation's numbers (+1234567890) cannot exist; sends go to a dialable one instead.
DIALABLE = "+5491155550101"
OTHER = "+5491155550102"


def contract(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONTRACTS / f"{name}.json").read_text())
    return loaded


def dialable(body: dict[str, Any], to: str = DIALABLE) -> dict[str, Any]:
    return body | {"to": to}


async def send(gateway: Gateway, key: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await gateway.call("POST", "/api/v1/messages", key=key, json=body)


async def answer_with_headers(
    gateway: Gateway, method: str, path: str, key: str | None, **kw: Any
) -> tuple[int, dict[str, str], Any]:
    headers = {"X-API-Key": key} if key else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, gateway.api + path, headers=headers, **kw) as response,
    ):
        return response.status, dict(response.headers), await response.json()


def error_shape(body: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(k for k in body["error"] if k != "details"))


@pytest.mark.parametrize("example", ["send_text", "send_image", "send_document", "send_location"])
async def test_each_documented_send_is_queued_and_read_back_as_sent(
    gateway: Gateway, receiver: Receiver, example: str
) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    body = contract(example)["request"]["body"]
    status, accepted = await send(gateway, key, dialable(body))
    assert 202 == status, accepted
    assert {"id", "status", "to", "type", "instanceName", "timestamp"} == set(accepted)
    assert ("pending", DIALABLE, body["type"], name) == (
        accepted["status"],
        accepted["to"],
        accepted["type"],
        accepted["instanceName"],
    )
    await receiver.wait_for(event_named("message.status", id=accepted["id"], status="sent"))
    _, stored = await gateway.call("GET", f"/message/{accepted['id']}", key=key)
    assert (body["type"], DIALABLE.removeprefix("+")) == (stored["type"], stored["to"])
    kind = body["type"]
    if kind == "text":
        assert body["text"] == stored["text"]
    elif kind == "location":
        assert body["location"] == stored["location"]
    else:
        expected = {"url": body[kind]["url"], "caption": body[kind]["caption"]}
        if kind == "document":
            expected["filename"] = body[kind]["filename"]
        assert expected == stored["media"]


async def test_the_documented_number_is_refused_with_the_documented_error(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, _name = await gateway.tenant_with_instance(receiver.url())
    status, refused = await send(gateway, key, contract("send_text")["request"]["body"])
    expected = contract("error")["response"]
    assert (400, expected["error"]) == (
        status,
        {k: v for k, v in refused["error"].items() if k != "details"},
    )
    assert ["to"] == refused["error"]["details"][0]["path"]
    async with gateway.mongo() as client:
        assert 0 == await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})


async def test_without_instance_name_the_primary_open_instance_sends(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    await gateway.instance(tenant_id, key, receiver.url())
    primary = await gateway.instance(tenant_id, key, receiver.url(), fields={"isPrimary": True})
    await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = dialable(contract("send_text")["request"]["body"])
    status, accepted = await send(gateway, key, body)
    assert (202, primary) == (status, accepted["instanceName"]), accepted


async def test_instance_name_in_the_body_picks_the_instance(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    await gateway.instance(tenant_id, key, receiver.url(), fields={"isPrimary": True})
    other = await gateway.instance(tenant_id, key, receiver.url())
    body = dialable(contract("send_text")["request"]["body"]) | {"instanceName": other}
    status, accepted = await send(gateway, key, body)
    assert (202, other) == (status, accepted["instanceName"]), accepted


async def test_a_tenant_without_instances_gets_a_not_found_in_the_seed_shape(
    gateway: Gateway,
) -> None:
    _, key = await gateway.tenant()
    status, refused = await send(gateway, key, dialable(contract("send_text")["request"]["body"]))
    assert (404, "not_found", 404) == (status, refused["error"]["code"], refused["error"]["status"])


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"type": "text"}, []),
        ({"type": "image", "text": "hi"}, []),
        ({"type": "text", "text": "hi", "image": {"url": "https://example.com/a.jpg"}}, []),
        ({"type": "image", "image": {"url": "not a url"}}, ["image", "url"]),
        ({"type": "document", "document": {"url": "https://e.com/a.pdf", "filename": ""}}, None),
        ({"type": "location", "location": {"latitude": 91, "longitude": 0}}, None),
        ({"type": "sticker", "sticker": {}}, ["type"]),
        ({"type": "text", "text": "hi", "priority": 3}, ["priority"]),
        ({"type": "text", "text": "{unclosed"}, ["text"]),
        ({"type": "template", "template": {"name": "x", "language": {}}}, None),
        (
            {
                "type": "template",
                "template": {
                    "name": "x",
                    "language": {"code": "en_US"},
                    "components": [{"type": "body", "parameters": [{"type": "image"}]}],
                },
            },
            None,
        ),
    ],
)
async def test_a_bad_send_body_is_a_400_in_the_seed_shape_and_queues_nothing(
    gateway: Gateway, receiver: Receiver, body: dict[str, Any], path: list[str] | None
) -> None:
    tenant_id, key, _ = await gateway.tenant_with_instance(receiver.url())
    status, refused = await send(gateway, key, {"to": DIALABLE} | body)
    assert (400, "validation_error", 400) == (
        status,
        refused["error"]["code"],
        refused["error"]["status"],
    ), refused
    if path is not None:
        assert path in [issue["path"] for issue in refused["error"]["details"]], refused
    async with gateway.mongo() as client:
        assert 0 == await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})


async def test_send_errors_of_the_core_come_in_the_seed_shape(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, _ = await gateway.tenant_with_instance(receiver.url())
    body = dialable(contract("send_text")["request"]["body"])
    status, _headers, refused = await answer_with_headers(
        gateway, "POST", "/api/v1/messages", "lg_wrong", json=body
    )
    assert (401, ("code", "message", "status"), "unauthorized") == (
        status,
        error_shape(refused),
        refused["error"]["code"],
    )
    other, _ = await gateway.tenant()
    status, refused = await send(gateway, key, body | {"instanceName": f"{other}__c__x"})
    assert (403, "forbidden") == (status, refused["error"]["code"])
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gateway.api + "/api/v1/messages", data="{", headers={"X-API-Key": key}
        ) as response,
    ):
        assert 415 == response.status
        assert "unsupported_media_type" == (await response.json())["error"]["code"]
    reader = await scoped_key(gateway, tenant_id, "messages:read")
    status, refused = await send(gateway, reader, body)
    assert (403, "insufficient_scope") == (status, refused["error"]["code"])


async def test_the_documented_template_reaches_the_cloud_api_as_given(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template(
        "appointment_reminder", "Hi {{1}}, see you on {{2}}.", language="en_US"
    )
    name, key, _, _ = await synced(gateway, meta, receiver, [template])
    body = contract("send_template")["request"]["body"]
    status, accepted = await send(gateway, key, dialable(body, "+" + CONTACT))
    assert (202, name) == (status, accepted["instanceName"]), accepted
    await receiver.wait_for(event_named("message.status", id=accepted["id"], status="sent"))
    sent = next(s for s in meta.sent if s.get("biz_opaque_callback_data") == accepted["id"])
    assert ("appointment_reminder", "en_US", body["template"]["components"]) == (
        sent["template"]["name"],
        sent["template"]["language"]["code"],
        sent["template"]["components"],
    )
    assert [] == [found for request, found in meta.invalid if request.get("to") == CONTACT]
    _, stored = await gateway.call("GET", f"/message/{accepted['id']}", key=key)
    assert ["John", "June 10, 2023"] == stored["template"]["variables"]


async def test_a_template_that_does_not_fit_the_synced_one_is_refused(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template("reminder_two", "Hi {{1}}, on {{2}}.", language="en_US")
    name, key, _, _ = await synced(gateway, meta, receiver, [template])
    body = contract("send_template")["request"]["body"]
    one_parameter = json.loads(json.dumps(body))
    one_parameter["template"]["name"] = "reminder_two"
    del one_parameter["template"]["components"][0]["parameters"][1]
    status, refused = await send(gateway, key, dialable(one_parameter, "+" + CONTACT))
    assert 400 == status, refused
    assert [["template", "components", 0, "parameters"]] == [
        issue["path"] for issue in refused["error"]["details"]
    ]
    with_header = json.loads(json.dumps(body))
    with_header["template"]["name"] = "reminder_two"
    with_header["template"]["components"].append(
        {"type": "header", "parameters": [{"type": "text", "text": "x"}]}
    )
    status, refused = await send(gateway, key, dialable(with_header, "+" + CONTACT))
    assert 400 == status and "has no header" in refused["error"]["message"], refused
    status, refused = await send(gateway, key, dialable(body, "+" + CONTACT))
    assert 400 == status and "sync templates first" in refused["error"]["message"], refused
    async with gateway.mongo() as client:
        assert 0 == await client.lanegate_test.messages.count_documents({"instanceName": name})


async def test_a_template_on_a_provider_without_templates_is_422(
    gateway: Gateway, receiver: Receiver
) -> None:
    _, key, _ = await gateway.tenant_with_instance(receiver.url())
    body = dialable(contract("send_template")["request"]["body"])
    status, refused = await send(gateway, key, body)
    assert (422, "whatsapp_not_configured", 422) == (
        status,
        refused["error"]["code"],
        refused["error"]["status"],
    )


async def _conversation(gateway: Gateway, receiver: Receiver) -> tuple[str, str, str]:
    """A tenant whose DIALABLE contact (John Doe, tagged) wrote once and got one reply."""
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url())
    for number, contact_name, tags in (
        (DIALABLE, "John Doe", ["customer", "premium"]),
        (OTHER, "Jane Smith", []),
    ):
        status, _ = await gateway.call(
            "POST",
            "/contacts",
            key=key,
            json={"identifier": number, "name": contact_name, "tags": tags},
        )
        assert 201 == status
    status, _ = await gateway.call(
        "POST", f"/sandbox/{name}/inbound", key=key, json={"from": DIALABLE, "text": "Hello!"}
    )
    assert 202 == status
    await receiver.wait_for(event_named("message.received", text="Hello!"))
    reply = {"to": DIALABLE, "type": "text", "text": "Hi there!"}
    status, accepted = await send(gateway, key, reply)
    assert 202 == status, accepted
    await receiver.wait_for(event_named("message.status", id=accepted["id"], status="sent"))
    return tenant_id, key, name


async def test_a_contacts_messages_come_in_the_documented_shape(
    gateway: Gateway, receiver: Receiver
) -> None:
    _, key, _ = await _conversation(gateway, receiver)
    documented = contract("contact_messages")["response"]
    path = contract("contact_messages")["request"]["path"].replace("+1234567890", DIALABLE)
    status, headers, body = await answer_with_headers(gateway, "GET", path, key)
    assert 200 == status, body
    assert set(documented) == set(body)
    reply, hello = body["messages"]
    assert set(documented["messages"][0]) <= set(reply)
    assert ("Hi there!", DIALABLE, "outbound") == (reply["text"], reply["to"], reply["direction"])
    assert reply["from"] is None or reply["from"].startswith("+")
    assert ("Hello!", DIALABLE, "received") == (hello["text"], hello["from"], hello["status"])
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers)
    status, first = await gateway.call("GET", f"{path}?limit=1", key=key)
    assert 200 == status and first["pagination"]["next"], first
    status, second = await gateway.call(
        "GET", path, key=key, params={"limit": 1, "cursor": first["pagination"]["next"]}
    )
    assert (200, ["Hello!"], None) == (
        status,
        [m["text"] for m in second["messages"]],
        second["pagination"]["next"],
    )


async def test_contacts_list_and_detail_come_in_the_documented_shape(
    gateway: Gateway, receiver: Receiver
) -> None:
    _, key, _ = await _conversation(gateway, receiver)
    documented = contract("contacts")["response"]
    status, body = await gateway.call("GET", "/api/v1/contacts", key=key)
    assert 200 == status, body
    assert set(documented) == set(body)
    john, jane = body["contacts"]
    assert set(documented["contacts"][0]) == set(john)
    assert (DIALABLE, "John Doe", OTHER, "Jane Smith", None) == (
        john["phone"],
        john["name"],
        jane["phone"],
        jane["name"],
        jane["lastMessageAt"],
    )
    assert john["lastMessageAt"] is not None
    status, first = await gateway.call("GET", "/api/v1/contacts?limit=1", key=key)
    status, second = await gateway.call(
        "GET", "/api/v1/contacts", key=key, params={"cursor": first["pagination"]["next"]}
    )
    assert ([DIALABLE], [OTHER], None) == (
        [c["phone"] for c in first["contacts"]],
        [c["phone"] for c in second["contacts"]],
        second["pagination"]["next"],
    )
    detail_path = contract("contact")["request"]["path"].replace("+1234567890", DIALABLE)
    status, detail = await gateway.call("GET", detail_path, key=key)
    assert 200 == status, detail
    assert set(contract("contact")["response"]) == set(detail)
    assert (john["id"], DIALABLE, ["customer", "premium"], None) == (
        detail["id"],
        detail["phone"],
        detail["tags"],
        detail["profileImage"],
    )
    status, by_id = await gateway.call("GET", f"/api/v1/contacts/{john['id']}", key=key)
    assert (200, DIALABLE) == (status, by_id["phone"])


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/contacts/+1234567890", 400, "invalid_phone_number"),
        ("/api/v1/contacts/+1234567890/messages", 400, "invalid_phone_number"),
        ("/api/v1/contacts/+5491155559999", 404, "not_found"),
        ("/api/v1/contacts?cursor=bm9wZQ", 400, "validation_error"),
        ("/api/v1/contacts?limit=0", 400, "validation_error"),
        ("/api/v1/contacts?page=2", 400, "validation_error"),
        (f"/api/v1/contacts/{DIALABLE}/messages?cursor=bm9wZQ", 400, "validation_error"),
        (f"/api/v1/contacts/{DIALABLE}/messages?limit=251", 400, "validation_error"),
    ],
)
async def test_read_errors_come_in_the_seed_shape_with_rate_limit_headers(
    gateway: Gateway, path: str, status: int, code: str
) -> None:
    _, key = await gateway.tenant()
    answered, headers, body = await answer_with_headers(gateway, "GET", path, key)
    assert (status, ("code", "message", "status"), code, status) == (
        answered,
        error_shape(body),
        body["error"]["code"],
        body["error"]["status"],
    )
    assert set(contract("rate_limit_headers")["headers"]) <= set(headers)


async def test_whatssync_routes_are_tagged_in_openapi(gateway: Gateway) -> None:
    _, spec = await gateway.call("GET", "/openapi.json")
    tagged = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if operation.get("tags") == ["WhatsSync compatibility"]
    }
    assert {
        ("POST", "/api/v1/messages"),
        ("GET", "/api/v1/contacts"),
        ("GET", "/api/v1/contacts/{phone}"),
        ("GET", "/api/v1/contacts/{phone}/messages"),
    } == tagged
