"""The Syncro API's WhatsApp part under /api/v1: its documented examples
(tests/contracts/syncro/) run against the gateway, integer ids kept in the store, lead sends
through the same accept as the native routes, every parameter and error."""

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.e2e.test_cloud_api import CONTACT
from tests.e2e.test_templates import meta_template, sync
from tests.e2e.test_waha import PHONE, waha_instance
from tests.simulators.meta import MetaSimulator, Number
from tests.simulators.waha import WahaSimulator
from tests.support.cloud import cloud_config, create_cloud
from tests.support.gateway import Gateway, eventually
from tests.support.keys import scoped_key
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

CONTRACTS = Path(__file__).parent.parent / "contracts" / "syncro"
DOCUMENTED_TEMPLATE = "Olá {{1}}, sua {{2}} está agendada para {{3}}."


def contract(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONTRACTS / f"{name}.json").read_text())
    return loaded


class Account(NamedTuple):
    """A tenant with the documented two numbers: a primary waha one, then a cloud_api one."""

    tenant_id: str
    key: str
    waha_name: str
    cloud_name: str
    number: Number


async def documented_account(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> Account:
    waha_name, key, _ = await waha_instance(gateway, waha, receiver)
    tenant_id = waha_name.split("__")[0]
    status, _ = await gateway.call(
        "PATCH",
        f"/instance/{waha_name}",
        key=key,
        json={"displayName": "Número principal", "isPrimary": True},
    )
    assert 200 == status
    cloud_name = f"{tenant_id}__support__{uuid.uuid4().hex[:6]}"
    number = meta.add_number(f"{gateway.api}/webhooks/cloud/{cloud_name}")
    await create_cloud(
        gateway, key, cloud_name, receiver, cloud_config(number, meta), displayName="API Oficial"
    )
    status, _ = await gateway.call("POST", f"/instance/{cloud_name}/connect", key=key)
    assert 200 == status

    async def first_sync_done() -> bool:
        _, state = await gateway.call("GET", f"/instance/{cloud_name}/status", key=key)
        return state["templateSync"] is not None

    await eventually(first_sync_done)
    meta.set_templates(number, [meta_template("lembrete_proposta", DOCUMENTED_TEMPLATE)])
    status, synced = await sync(gateway, key, cloud_name)
    assert 200 == status, synced
    return Account(tenant_id, key, waha_name, cloud_name, number)


async def lead(gateway: Gateway, key: str, number: str = CONTACT) -> str:
    status, contact = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": number, "name": "Ana"}
    )
    assert status in (200, 201), contact
    return str(contact["id"])


def without_phone(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "phone_number"}


async def test_the_documented_instances_answer(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> None:
    account = await documented_account(gateway, meta, waha, receiver)
    documented = contract("instances")
    status, body = await gateway.call(
        "GET", documented["request"]["path"], headers={"X-API-Key": account.key}
    )
    assert 200 == status, body
    expected = documented["response"]
    assert [without_phone(e) for e in expected["data"]] == [without_phone(e) for e in body["data"]]
    assert [
        "+" + PHONE,
        "+" + "".join(filter(str.isdigit, account.number.display_phone_number)),
    ] == [e["phone_number"] for e in body["data"]]
    assert expected["success"] == body["success"]
    _, again = await gateway.call("GET", "/api/v1/whatsapp/instances", key=account.key)
    assert body == again


async def test_the_documented_templates_answer(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> None:
    account = await documented_account(gateway, meta, waha, receiver)
    documented = contract("templates")
    status, body = await gateway.call(
        "GET", documented["request"]["path"], headers={"X-API-Key": account.key}
    )
    assert 200 == status, body
    [expected] = documented["response"]["data"]
    [shown] = body["data"]
    # The gateway names a template's variables by their placeholders ({{1}} is "1").
    assert expected | {"variables": ["1", "2", "3"]} == shown
    _, instances = await gateway.call("GET", "/api/v1/whatsapp/instances", key=account.key)
    cloud = next(i["id"] for i in instances["data"] if i["provider"] == "cloud_api")
    assert cloud == shown["whatsapp_instance_id"]


async def test_templates_filter_by_instance_status_and_language(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> None:
    account = await documented_account(gateway, meta, waha, receiver)
    _, instances = await gateway.call("GET", "/api/v1/whatsapp/instances", key=account.key)
    ids = {i["provider"]: i["id"] for i in instances["data"]}

    async def names(**params: Any) -> list[str]:
        status, body = await gateway.call(
            "GET", "/api/v1/whatsapp/templates", key=account.key, params=params
        )
        assert 200 == status, body
        return [t["name"] for t in body["data"]]

    assert ["lembrete_proposta"] == await names(instance_id=ids["cloud_api"])
    assert [] == await names(instance_id=ids["waha"])
    assert [] == await names(instance_id=999)
    assert ["lembrete_proposta"] == await names(status="approved", language="pt_BR")
    assert [] == await names(status="PENDING")
    assert [] == await names(language="en_US")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"instance_id": "abc"}, "instance_id"),
        ({"instance_id": "0"}, "instance_id"),
        ({"status": "APPROVED;DROP"}, "status"),
        ({"language": "p"}, "language"),
        ({"page": "2"}, "page"),
    ],
)
async def test_a_bad_templates_query_is_a_400_in_syncros_shape(
    gateway: Gateway, query: dict[str, str], field: str
) -> None:
    _, key = await gateway.tenant()
    status, body = await gateway.call("GET", "/api/v1/whatsapp/templates", key=key, params=query)
    assert (400, False, "VALIDATION_ERROR") == (status, body["success"], body["code"]), body
    assert [[field]] == [issue["path"] for issue in body["issues"]]


async def test_ids_are_per_tenant_and_assigned_once_under_concurrent_reads(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    names = [await gateway.instance(tenant_id, key, receiver.url(), connect=False) for _ in "abc"]
    answers = await asyncio.gather(
        *(gateway.call("GET", "/api/v1/whatsapp/instances", key=key) for _ in range(6))
    )
    assert {200} == {status for status, _ in answers}
    # Racing first listings agree: each instance has one number, whichever request gave it.
    assert 1 == len({json.dumps(body) for _, body in answers})
    first = {i["display_name"] or str(n): i["id"] for n, i in enumerate(answers[0][1]["data"])}
    assert 3 == len(set(first.values()))
    fourth = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    _, listed = await gateway.call("GET", "/api/v1/whatsapp/instances", key=key)
    [*kept, new] = [i["id"] for i in listed["data"]]
    assert list(first.values()) == kept and new not in kept
    async with gateway.mongo() as client:
        numbered = client.lanegate_test.numbered_ids.find(
            {"tenantId": tenant_id, "kind": "instance"}
        )
        assert {**dict(zip(names, kept, strict=True)), fourth: new} == {
            record["ref"]: record["number"] async for record in numbered
        }
    _, again = await gateway.call("GET", "/api/v1/whatsapp/instances", key=key)
    assert listed == again
    other_tenant, other_key = await gateway.tenant()
    await gateway.instance(other_tenant, other_key, receiver.url(), connect=False)
    _, theirs = await gateway.call("GET", "/api/v1/whatsapp/instances", key=other_key)
    assert [1] == [i["id"] for i in theirs["data"]]


async def test_a_template_is_sent_to_a_lead_with_its_variables(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> None:
    account = await documented_account(gateway, meta, waha, receiver)
    _, templates = await gateway.call("GET", "/api/v1/whatsapp/templates", key=account.key)
    [template] = templates["data"]
    lead_id = await lead(gateway, account.key)
    request = contract("send_whatsapp_template")["request"]
    body = request["body"] | {
        "instance_id": template["whatsapp_instance_id"],
        "template_id": template["id"],
    }
    status, answer = await gateway.call(
        "POST", request["path"].format(id=lead_id), key=account.key, json=body
    )
    assert 202 == status, answer
    assert {"success": True} | {
        "data": {
            "message_id": answer["data"]["message_id"],
            "status": "pending",
            "lead_id": lead_id,
            "instance_id": template["whatsapp_instance_id"],
            "to": "+" + CONTACT,
        }
    } == answer
    message_id = answer["data"]["message_id"]
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    sent = next(s for s in meta.sent if s.get("biz_opaque_callback_data") == message_id)
    assert [{"type": "text", "text": v} for v in body["variables"]] == sent["template"][
        "components"
    ][0]["parameters"]
    without_instance = {k: v for k, v in body.items() if k != "instance_id"}
    status, answer = await gateway.call(
        "POST", request["path"].format(id=lead_id), key=account.key, json=without_instance
    )
    assert (202, template["whatsapp_instance_id"]) == (status, answer["data"]["instance_id"])


async def test_template_send_errors_name_syncros_fields_and_queue_nothing(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> None:
    account = await documented_account(gateway, meta, waha, receiver)
    _, templates = await gateway.call("GET", "/api/v1/whatsapp/templates", key=account.key)
    [template] = templates["data"]
    _, instances = await gateway.call("GET", "/api/v1/whatsapp/instances", key=account.key)
    waha_id = next(i["id"] for i in instances["data"] if i["provider"] == "waha")
    lead_id = await lead(gateway, account.key)
    path = f"/api/v1/leads/{lead_id}/send-whatsapp-template"
    good = {"template_id": template["id"], "variables": ["Ana", "proposta", "amanhã"]}

    async def refused(body: dict[str, Any], to: str = path) -> tuple[int, Any]:
        return await gateway.call("POST", to, key=account.key, json=body)

    status, body = await refused(good | {"variables": ["Ana"]})
    assert (400, [["variables"]]) == (status, [i["path"] for i in body["issues"]]), body
    status, body = await refused(good | {"template_id": 999})
    assert (404, "NOT_FOUND", False) == (status, body["code"], body["success"])
    status, body = await refused(good | {"instance_id": waha_id})
    assert 422 == status and "templates need a cloud_api instance" in body["error"], body
    status, body = await refused(good | {"instance_id": 999})
    assert 404 == status, body
    status, body = await refused(good, f"/api/v1/leads/{uuid.uuid4()}/send-whatsapp-template")
    assert (404, "NOT_FOUND") == (status, body["code"])
    status, body = await refused({"variables": []})
    assert (400, [["template_id"]]) == (status, [i["path"] for i in body["issues"]])
    async with gateway.mongo() as client:
        queued = await client.lanegate_test.messages.count_documents(
            {"tenantId": account.tenant_id}
        )
    assert 0 == queued


async def test_a_text_is_sent_to_a_lead_on_the_named_or_primary_number(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    first = await gateway.instance(tenant_id, key, receiver.url())
    primary = await gateway.instance(tenant_id, key, receiver.url(), fields={"isPrimary": True})
    _, instances = await gateway.call("GET", "/api/v1/whatsapp/instances", key=key)
    assert [1, 2] == [i["id"] for i in instances["data"]]
    lead_id = await lead(gateway, key, "5491155550301")
    request = contract("send_whatsapp")["request"]
    status, answer = await gateway.call(
        "POST", request["path"].format(id=lead_id), key=key, json=request["body"]
    )
    assert (202, 1, "+5491155550301") == (
        status,
        answer["data"]["instance_id"],
        answer["data"]["to"],
    ), answer
    message_id = answer["data"]["message_id"]
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    _, stored = await gateway.call("GET", f"/message/{message_id}", key=key)
    assert (first, request["body"]["message"]) == (stored["instanceName"], stored["text"])
    status, answer = await gateway.call(
        "POST",
        f"/api/v1/leads/{lead_id}/send-whatsapp",
        key=key,
        json={"message": "{Oi|Olá}"},
    )
    assert 202 == status, answer
    _, stored = await gateway.call("GET", f"/message/{answer['data']['message_id']}", key=key)
    assert primary == stored["instanceName"]


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        ({}, 400, ["message"]),
        ({"message": ""}, 400, ["message"]),
        ({"message": "{unclosed"}, 400, ["message"]),
        ({"message": "hi", "instance_id": "one"}, 400, ["instance_id"]),
        ({"message": "hi", "extra": 1}, 400, ["extra"]),
        ({"message": "hi", "instance_id": 999}, 404, None),
    ],
)
async def test_a_bad_text_send_is_refused_in_syncros_shape(
    gateway: Gateway, receiver: Receiver, body: dict[str, Any], status: int, path: list[str] | None
) -> None:
    tenant_id, key, _ = await gateway.tenant_with_instance(receiver.url())
    lead_id = await lead(gateway, key, "5491155550302")
    answered, answer = await gateway.call(
        "POST", f"/api/v1/leads/{lead_id}/send-whatsapp", key=key, json=body
    )
    assert (status, False) == (answered, answer["success"]), answer
    if path is not None:
        assert path in [issue["path"] for issue in answer["issues"]], answer
    async with gateway.mongo() as client:
        assert 0 == await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})


async def test_whatsapp_read_and_write_permissions_are_scopes(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, _ = await gateway.tenant_with_instance(receiver.url())
    lead_id = await lead(gateway, key, "5491155550303")
    reader = await scoped_key(gateway, tenant_id, "whatsapp:read")
    writer = await scoped_key(gateway, tenant_id, "whatsapp:write")
    send = f"/api/v1/leads/{lead_id}/send-whatsapp"
    for path in ("/api/v1/whatsapp/instances", "/api/v1/whatsapp/templates"):
        assert 200 == (await gateway.call("GET", path, key=reader))[0]
        status, body = await gateway.call("GET", path, key=writer)
        assert (403, "INSUFFICIENT_SCOPE", False) == (status, body["code"], body["success"])
    assert 202 == (await gateway.call("POST", send, key=writer, json={"message": "hi"}))[0]
    status, body = await gateway.call("POST", send, key=reader, json={"message": "hi"})
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])
    status, body = await gateway.call("GET", "/api/v1/whatsapp/instances")
    assert (401, False) == (status, body["success"])


async def test_syncro_routes_are_tagged_in_openapi(gateway: Gateway) -> None:
    _, spec = await gateway.call("GET", "/openapi.json")
    tagged = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if operation.get("tags") == ["Syncro compatibility"]
    }
    assert {
        ("GET", "/api/v1/whatsapp/instances"),
        ("GET", "/api/v1/whatsapp/templates"),
        ("POST", "/api/v1/leads/{id}/send-whatsapp-template"),
        ("POST", "/api/v1/leads/{id}/send-whatsapp"),
    } == tagged
