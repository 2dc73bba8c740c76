"""Templates end to end against the Meta simulator: sync, status callbacks, errors, sends."""

import json
import uuid
from typing import Any

import pytest

from tests.e2e.test_cloud_api import CONTACT, cloud_instance
from tests.simulators.meta import MetaSimulator, Number
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e


def meta_template(name: str, text: str, **extra: Any) -> dict[str, Any]:
    """A template as Meta lists it, APPROVED unless told otherwise."""
    return {
        "name": name,
        "language": "pt_BR",
        "category": "UTILITY",
        "status": "APPROVED",
        "components": [{"type": "BODY", "text": text}],
        "quality_score": "GREEN",
    } | extra


def five_templates() -> list[dict[str, Any]]:
    return [meta_template(f"t{i}_{uuid.uuid4().hex[:4]}", f"Olá {{{{1}}}} #{i}") for i in range(5)]


async def sync(gateway: Gateway, key: str, name: str) -> tuple[int, Any]:
    return await gateway.call("POST", "/templates/sync", key=key, json={"instanceName": name})


async def synced(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver, templates: list[dict[str, Any]]
) -> tuple[str, str, Number, dict[str, Any]]:
    """A cloud_api instance whose WABA holds `templates`, synced; returns the sync answer too."""
    name, key, number = await cloud_instance(gateway, meta, receiver)
    meta.set_templates(number, templates)
    status, body = await sync(gateway, key, name)
    assert 200 == status, body
    return name, key, number, body


def by_name(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in answer["templates"]}


async def test_sync_follows_every_page_and_answers_every_template(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    templates = five_templates()
    _, _, number, body = await synced(gateway, meta, receiver, templates)
    assert 5 == body["synced_count"]
    assert sorted(t["name"] for t in templates) == sorted(by_name(body))
    pages = [after for waba, after in meta.template_requests if waba == number.waba_id]
    last_sync = pages[len(pages) - 1 - pages[::-1].index(None) :]  # opening synced too
    assert 3 == len(last_sync) and None not in last_sync[1:]


async def test_synced_templates_carry_their_fields_and_body_variables(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template("lembrete", "Olá {{1}}, sua {{2}} está agendada para {{3}}.")
    name, key, _, _ = await synced(gateway, meta, receiver, [template])
    status, listed = await gateway.call(
        "GET", "/whatsapp/templates", key=key, params={"instance_id": name, "status": "APPROVED"}
    )
    assert 200 == status, listed
    [shown] = listed["data"]
    assert (
        "lembrete",
        "pt_BR",
        "UTILITY",
        "APPROVED",
        name,
        ["1", "2", "3"],
        "GREEN",
        template["id"],
    ) == (
        shown["name"],
        shown["language"],
        shown["category"],
        shown["status"],
        shown["whatsapp_instance_id"],
        shown["variables"],
        shown["quality_rating"],
        shown["meta_template_id"],
    )
    assert template["components"] == shown["components"]
    _, one = await gateway.call("GET", f"/templates/{shown['id']}", key=key)
    assert shown == one["data"]


async def test_a_template_deleted_at_meta_is_marked_deleted(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    templates = five_templates()
    name, key, number, first = await synced(gateway, meta, receiver, templates)
    gone = by_name(first)[templates[0]["name"]]
    meta.set_templates(number, templates[1:])
    status, second = await sync(gateway, key, name)
    assert (200, 4) == (status, second["synced_count"])
    _, one = await gateway.call("GET", f"/templates/{gone['id']}", key=key)
    assert (True, "DELETED") == (one["data"]["deleted"], one["data"]["status"])
    _, listed = await gateway.call(
        "GET", "/whatsapp/templates", key=key, params={"instance_id": name}
    )
    assert gone["id"] not in [t["id"] for t in listed["data"]]


async def test_templates_are_synced_on_a_timer_and_a_failing_waba_stops_no_other(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    failing, _, broken = await cloud_instance(gateway, meta, receiver)
    broken.access_token = "EAAG-revoked"  # every timer pass now fails for this WABA
    name, key, number = await cloud_instance(gateway, meta, receiver)
    meta.set_templates(number, five_templates())

    async def listed() -> bool:
        _, body = await gateway.call(
            "GET", "/whatsapp/templates", key=key, params={"instance_id": name}
        )
        return len(body["data"]) == 5

    await eventually(listed, timeout=20)
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.instances.find_one({"_id": failing})
    assert stored is not None and "error" == stored["templateSync"]["result"]


async def test_a_status_callback_updates_the_template_and_reaches_the_tenant(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template("promo", "Oi {{1}}")
    name, key, number, body = await synced(gateway, meta, receiver, [template])
    ours = by_name(body)["promo"]["id"]
    assert 200 == await meta.template_status(number, template, "PAUSED", "Low quality")
    told = await receiver.wait_for(event_named("template.status", id=ours))
    event = json.loads(told[0].body)
    assert (name, "PAUSED", "APPROVED", "Low quality") == (
        event["instanceName"],
        event["data"]["status"],
        event["data"]["previousStatus"],
        event["data"]["reason"],
    )
    _, one = await gateway.call("GET", f"/templates/{ours}", key=key)
    assert "PAUSED" == one["data"]["status"]


async def test_a_template_that_is_not_approved_is_refused(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template("paused_one", "Oi {{1}}", status="PAUSED")
    name, key, _, _ = await synced(gateway, meta, receiver, [template])
    status, refused = await gateway.call(
        "POST",
        "/message/template",
        key=key,
        json={
            "instanceName": name,
            "to": CONTACT,
            "name": "paused_one",
            "language": "pt_BR",
            "variables": ["Ana"],
        },
    )
    assert 400 == status
    assert "is PAUSED; only APPROVED templates can be sent" in refused["issues"][0]["message"]


async def test_a_rejected_token_is_a_500_with_metas_message(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    number.access_token = "EAAG-revoked"
    status, body = await sync(gateway, key, name)
    assert (500, "WHATSAPP_API_ERROR") == (status, body["code"])
    assert "Invalid OAuth access token" in body["error"]


@pytest.mark.parametrize("code", [4, 80007])
async def test_a_throttled_waba_backs_off_then_syncs(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver, code: int
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    meta.set_templates(number, five_templates())
    meta.throttle_templates(number, code)
    status, body = await sync(gateway, key, name)
    assert (429, "WHATSAPP_RATE_LIMITED") == (status, body["code"])
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.instances.find_one({"_id": name})
    assert stored is not None and stored["templateSync"]["backoffUntil"] is not None
    meta.throttle_templates(number, None)

    async def syncs() -> bool:
        return (await sync(gateway, key, name))[0] == 200

    await eventually(syncs, timeout=30, every=0.5)


async def test_sync_of_an_instance_without_a_waba_is_422(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await sync(gateway, key, name)
    assert (422, "WHATSAPP_NOT_CONFIGURED") == (status, body["code"])


async def test_sync_needs_the_templates_sync_scope(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    _, created = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/keys",
        headers={"apikey": gateway.admin_key},
        json={"scopes": ["templates:read"]},
    )
    status, body = await sync(gateway, created["apiKey"], name)
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])


async def test_a_template_send_outside_the_window_reaches_meta_in_its_schema(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template(
        "pedido",
        "Olá {{1}}, seu pedido {{2}} saiu.",
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} saiu."},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Parar"}]},
        ],
    )
    name, key, _, body = await synced(gateway, meta, receiver, [template])
    status, accepted = await gateway.call(
        "POST",
        "/message/template",
        key=key,
        json={
            "instanceName": name,
            "to": CONTACT,  # never wrote to this number: no open window
            "templateId": by_name(body)["pedido"]["id"],
            "variables": ["Ana", "A-17"],
            "headerMedia": {"url": "https://cdn.example.com/pedido.jpg"},
            "buttons": [{"index": 0, "payload": "STOP"}],
            "lane": "urgent",
        },
    )
    assert 202 == status, accepted
    await receiver.wait_for(event_named("message.status", id=accepted["id"], status="sent"))
    sent = next(s for s in meta.sent if s.get("biz_opaque_callback_data") == accepted["id"])
    assert ("template", "pedido", ["header", "body", "button"]) == (
        sent["type"],
        sent["template"]["name"],
        [c["type"] for c in sent["template"]["components"]],
    )
    assert [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-17"}] == sent["template"][
        "components"
    ][1]["parameters"]
    assert [] == [found for body, found in meta.invalid if body.get("to") == CONTACT]


async def test_a_wrong_variable_count_is_refused_and_nothing_is_queued(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template("dois", "Olá {{1}}, {{2}}")
    name, key, _, _ = await synced(gateway, meta, receiver, [template])
    status, body = await gateway.call(
        "POST",
        "/message/template",
        key=key,
        json={
            "instanceName": name,
            "to": CONTACT,
            "name": "dois",
            "language": "pt_BR",
            "variables": ["Ana"],
        },
    )
    assert 400 == status
    assert [
        {"path": ["variables"], "message": "Template dois takes 2 variables ({{1}}, {{2}}); got 1"}
    ] == body["issues"]
    async with gateway.mongo() as client:
        assert 0 == await client.lanegate_test.messages.count_documents({"instanceName": name})


async def test_whatsapp_instances_lists_numbers_with_their_capabilities(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await cloud_instance(gateway, meta, receiver)
    status, body = await gateway.call("GET", "/whatsapp/instances", key=key)
    assert 200 == status
    assert [
        {
            "id": name,
            "provider": "cloud_api",
            "status": "connected",
            "supports_templates": True,
            "supports_buttons": True,
            "has_window_restriction": True,
        }
    ] == [
        {
            k: i[k]
            for k in (
                "id",
                "provider",
                "status",
                "supports_templates",
                "supports_buttons",
                "has_window_restriction",
            )
        }
        for i in body["data"]
    ]


async def test_another_tenants_template_is_not_found(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    _, _, _, body = await synced(gateway, meta, receiver, [meta_template("mine", "Oi")])
    _, other = await gateway.tenant()
    status, _ = await gateway.call("GET", f"/templates/{by_name(body)['mine']['id']}", key=other)
    assert 404 == status


async def test_a_sync_slower_than_the_rpc_timeout_is_a_504(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    meta.set_templates(number, five_templates())
    meta.template_delay[number.waba_id] = 2  # 3 pages: longer than the stack's 3 s RPC timeout
    try:
        status, body = await sync(gateway, key, name)
    finally:
        meta.template_delay.pop(number.waba_id)
    assert (504, "PROVIDER_TIMEOUT") == (status, body["code"])


async def test_a_status_callback_for_a_template_not_yet_synced_pulls_it(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    _, key, number, _ = await synced(gateway, meta, receiver, [])
    fresh = meta_template("novo", "Oi {{1}}", status="PENDING")
    meta.set_templates(number, [fresh])
    assert 200 == await meta.template_status(number, fresh, "APPROVED")
    told = await receiver.wait_for(event_named("template.status", metaTemplateId=fresh["id"]))
    data = json.loads(told[0].body)["data"]
    assert ("APPROVED", None) == (data["status"], data["previousStatus"])

    async def stored() -> bool:
        status, body = await gateway.call("GET", f"/templates/{data['id']}", key=key)
        return status == 200 and body["data"]["status"] == "APPROVED"

    await eventually(stored, timeout=10)
