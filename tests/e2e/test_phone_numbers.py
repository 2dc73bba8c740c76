"""Phone numbers as people write them: every place a number comes in reads it into E.164
digits (national forms in the instance's or tenant's `defaultCountry`), refuses one that
cannot exist with `invalid_phone_number`, and keeps one contact per person."""

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest

from ingress_api.normalizing import normalize_contacts
from lanegate.events import utcnow
from lanegate.store import Store
from tests.e2e.test_cloud_api import contact_writes
from tests.e2e.test_templates import by_name, meta_template, synced
from tests.simulators.meta import MetaSimulator
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

BR_MOBILE = "5511999998888"


async def _tenant(gateway: Gateway, country: str | None = None) -> tuple[str, str]:
    tenant_id = f"t{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {"id": tenant_id, "name": tenant_id}
    if country is not None:
        body["defaultCountry"] = country
    status, answer = await gateway.call(
        "POST", "/admin/tenants", json=body, headers={"apikey": gateway.admin_key}
    )
    assert 201 == status, answer
    return tenant_id, answer["apiKey"]


async def _text(gateway: Gateway, key: str, name: str, to: str) -> tuple[int, Any]:
    body = {"instanceName": name, "to": to, "text": "hi", "lane": "urgent"}
    return await gateway.call("POST", "/message/text", key=key, json=body)


async def _stored_to(gateway: Gateway, key: str, message_id: str) -> str:
    _, message = await gateway.call("GET", f"/message/{message_id}", key=key)
    return str(message["to"])


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("+55 11 99999-8888", BR_MOBILE),
        ("+1 (415) 555-0100", "14155550100"),
        ("+54 9 11 1234-5678", "5491112345678"),
        ("5491112345678", "5491112345678"),
    ],
)
async def test_international_numbers_are_sent_to_their_e164_digits(
    gateway: Gateway, receiver: Receiver, written: str, stored: str
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())

    status, answer = await _text(gateway, key, name, written)

    assert 202 == status, answer
    [hook] = await receiver.wait_for(event_named("message.status", id=answer["id"], status="sent"))
    assert stored == json.loads(hook.body)["data"]["to"]
    assert stored == await _stored_to(gateway, key, answer["id"])


async def test_national_numbers_follow_the_instances_country_else_the_tenants(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, "br")
    tenant_instance = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    us_instance = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, view = await gateway.call(
        "PATCH", f"/instance/{us_instance}", key=key, json={"defaultCountry": "US"}
    )
    assert (200, "US") == (status, view["defaultCountry"]), view

    status, in_brazil = await _text(gateway, key, tenant_instance, "(011) 99999-8888")
    assert 202 == status, in_brazil
    status, in_us = await _text(gateway, key, us_instance, "(415) 555-0100")
    assert 202 == status, in_us
    status, refused = await _text(gateway, key, us_instance, "(011) 99999-8888")

    assert BR_MOBILE == await _stored_to(gateway, key, in_brazil["id"])
    assert "14155550100" == await _stored_to(gateway, key, in_us["id"])
    assert (400, ["to"], "invalid_phone_number") == (
        status,
        refused["issues"][0]["path"],
        refused["issues"][0]["code"],
    )
    _, tenants = await gateway.call("GET", "/admin/tenants", headers={"apikey": gateway.admin_key})
    assert "BR" == next(t for t in tenants if t["id"] == tenant_id)["defaultCountry"]


async def test_a_national_number_without_a_default_country_is_refused(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    async with gateway.mongo() as client:
        before = await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})

    status, answer = await _text(gateway, key, name, "(011) 99999-8888")

    assert 400 == status
    [issue] = answer["issues"]
    assert (["to"], "invalid_phone_number") == (issue["path"], issue["code"])
    assert issue["message"].startswith("invalid_phone_number: ")
    assert "defaultCountry" in issue["message"]
    async with gateway.mongo() as client:
        assert before == await client.lanegate_test.messages.count_documents(
            {"tenantId": tenant_id}
        )


@pytest.mark.parametrize("written", ["+999 1234 5678", "+54 911", "123", "+55 11 9"])
async def test_a_number_that_cannot_exist_is_400_invalid_phone_number(
    gateway: Gateway, receiver: Receiver, written: str
) -> None:
    tenant_id, key = await _tenant(gateway, "BR")
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, answer = await _text(gateway, key, name, written)

    assert (400, [{"path": ["to"], "code": "invalid_phone_number"}]) == (
        status,
        [{"path": i["path"], "code": i.get("code")} for i in answer["issues"]],
    )


async def test_bulk_reads_each_item_in_its_instances_country_and_names_bad_indexes(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, "BR")
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    item = {"instanceName": name, "text": "hi"}

    status, answer = await gateway.call(
        "POST",
        "/message/bulk",
        key=key,
        json={"messages": [item | {"to": "(011) 99999-8888"}, item | {"to": "+1 (415) 555-0100"}]},
    )
    assert 202 == status, answer
    stored = [await _stored_to(gateway, key, m["id"]) for m in answer["messages"]]
    assert [BR_MOBILE, "14155550100"] == stored

    status, answer = await gateway.call(
        "POST",
        "/message/bulk",
        key=key,
        json={"messages": [item | {"to": "(011) 99999-8888"}, item | {"to": "+999 1"}]},
    )
    assert (400, [["messages", 1, "to"]], ["invalid_phone_number"]) == (
        status,
        [i["path"] for i in answer["issues"]],
        [i.get("code") for i in answer["issues"]],
    )


async def test_routed_and_attachment_sends_read_the_number_as_written(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, "BR")
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, routed = await gateway.call(
        "POST",
        "/message/send",
        key=key,
        json={
            "tenantId": tenant_id,
            "clientId": "support",
            "to": "(011) 99999-8888",
            "type": "text",
            "text": "hi",
        },
    )
    assert (202, name) == (status, routed["instanceName"]), routed
    form = aiohttp.FormData()
    for field, value in {"instanceName": name, "to": "+55 (11) 99999-8888"}.items():
        form.add_field(field, value)
    form.add_field("attachments", b"%PDF-1.4\n%%EOF\n", filename="a.pdf")
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.api + "/message/attachment", data=form, headers={"apikey": key}) as r,
    ):
        uploaded = await r.json()
        assert 202 == r.status, uploaded

    assert [BR_MOBILE, BR_MOBILE] == [
        await _stored_to(gateway, key, routed["id"]),
        await _stored_to(gateway, key, uploaded["id"]),
    ]


async def test_a_template_send_reads_the_number_as_written(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template("aviso", "Olá {{1}}")
    name, key, number, synced_answer = await synced(gateway, meta, receiver, [template])
    await contact_writes(meta, number, receiver)

    status, answer = await gateway.call(
        "POST",
        "/message/template",
        key=key,
        json={
            "instanceName": name,
            "to": "+54 9 11 8765-4321",
            "templateId": by_name(synced_answer)["aviso"]["id"],
            "variables": ["Ana"],
            "lane": "urgent",
        },
    )

    assert 202 == status, answer
    await receiver.wait_for(event_named("message.status", id=answer["id"], status="sent"))
    sent = next(s for s in meta.sent if s.get("biz_opaque_callback_data") == answer["id"])
    assert "5491187654321" == sent["to"]


async def test_one_person_written_two_ways_is_one_contact(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, "BR")
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, first = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": "+55 11 99999-8888", "tags": ["vip"]}
    )
    assert (201, BR_MOBILE) == (status, first["identifier"]), first
    status, second = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": "(011) 99999-8888", "name": "Ana"}
    )
    assert (200, first["id"], "Ana", ["vip"]) == (
        status,
        second["id"],
        second["name"],
        second["tags"],
    )
    status, _ = await _text(gateway, key, name, "11 99999-8888")
    assert 202 == status
    status, found = await gateway.call("GET", "/contacts/+55%2011%2099999-8888", key=key)
    assert (200, first["id"]) == (status, found["id"])
    status, page = await gateway.call("GET", "/contacts/(011)%2099999-8888/messages", key=key)
    assert (200, 1) == (status, len(page["messages"]))
    status, answer = await gateway.call("GET", "/contacts/+999%201/messages", key=key)
    assert (400, ["phone"], "invalid_phone_number") == (
        status,
        answer["issues"][0]["path"],
        answer["issues"][0]["code"],
    )

    status, _ = await gateway.call(
        "PATCH", "/contacts/011%2099999-8888/status", key=key, json={"active": False}
    )
    assert 200 == status
    status, refused = await _text(gateway, key, name, "+55 11 99999-8888")
    assert (422, "UNPROCESSABLE") == (status, refused["code"])
    _, listed = await gateway.call("GET", "/contacts", key=key)
    assert [BR_MOBILE] == [c["identifier"] for c in listed["contacts"]]


async def test_a_contact_name_on_a_send_names_the_one_contact(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, "BR")
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = {"instanceName": name, "text": "hi"}
    for to, contact_name in (("+55 11 99999-8888", "Ana"), ("(011) 99999-8888", "Ana Paula")):
        status, answer = await gateway.call(
            "POST", "/message/text", key=key, json=body | {"to": to, "contactName": contact_name}
        )
        assert 202 == status, answer

    _, listed = await gateway.call("GET", "/contacts", key=key)

    assert [(BR_MOBILE, "Ana Paula")] == [(c["identifier"], c["name"]) for c in listed["contacts"]]


async def test_sandbox_inbound_and_pairing_code_take_numbers_as_written(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())

    status, _ = await gateway.call(
        "POST",
        f"/sandbox/{name}/inbound",
        key=key,
        json={"from": "+55 11 99999-8888", "text": "oi"},
    )

    assert 202 == status
    await receiver.wait_for(event_named("message.received", **{"from": BR_MOBILE}))
    status, answer = await gateway.call(
        "POST", f"/instance/{name}/pairing-code", key=key, json={"phoneNumber": "+55 11 9"}
    )
    assert (400, ["phoneNumber"]) == (status, answer["issues"][0]["path"])


@pytest.mark.parametrize("country", ["XX", "BRA", "1"])
async def test_a_default_country_must_be_an_iso_code(
    gateway: Gateway, receiver: Receiver, country: str
) -> None:
    tenant_id, key = await gateway.tenant()
    status, answer = await gateway.call(
        "POST",
        "/admin/tenants",
        json={"id": f"t{uuid.uuid4().hex[:10]}", "name": "x", "defaultCountry": country},
        headers={"apikey": gateway.admin_key},
    )
    assert (400, ["defaultCountry"]) == (status, answer["issues"][0]["path"])
    status, answer = await gateway.call(
        "PATCH",
        f"/admin/tenants/{tenant_id}",
        json={"defaultCountry": country},
        headers={"apikey": gateway.admin_key},
    )
    assert (400, ["defaultCountry"]) == (status, answer["issues"][0]["path"])
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, answer = await gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"defaultCountry": country}
    )
    assert (400, ["defaultCountry"]) == (status, answer["issues"][0]["path"])


async def _insert_contacts(
    gateway: Gateway, tenant_id: str, contacts: list[dict[str, Any]]
) -> None:
    """Contacts as an older gateway stored them: digits as written, one per spelling."""
    async with gateway.mongo() as client:
        await client.lanegate_test.contacts.insert_many(
            [
                {
                    "_id": uuid.uuid4().hex,
                    "tenantId": tenant_id,
                    "type": "WHATSAPP",
                    "tags": [],
                    "active": True,
                    "createdAt": utcnow(),
                    "updatedAt": utcnow(),
                }
                | contact
                for contact in contacts
            ]
        )


async def _contacts(gateway: Gateway, tenant_id: str) -> list[dict[str, Any]]:
    async with gateway.mongo() as client:
        found = client.lanegate_test.contacts.find({"tenantId": tenant_id}).sort("identifier", 1)
        return await found.to_list(None)


async def test_setting_a_tenants_country_merges_its_contacts_written_two_ways(
    gateway: Gateway,
) -> None:
    tenant_id, _ = await gateway.tenant()
    await _insert_contacts(
        gateway,
        tenant_id,
        [
            {"identifier": "11999998888", "tags": ["a"], "name": "Ana"},
            {"identifier": BR_MOBILE, "tags": ["b"]},
            {"identifier": "5491112345678"},
        ],
    )

    status, answer = await gateway.call(
        "PATCH",
        f"/admin/tenants/{tenant_id}",
        json={"defaultCountry": "BR"},
        headers={"apikey": gateway.admin_key},
    )

    assert (200, "BR") == (status, answer["defaultCountry"])
    assert [("5491112345678", None, []), (BR_MOBILE, "Ana", ["a", "b"])] == [
        (c["identifier"], c.get("name"), c["tags"]) for c in await _contacts(gateway, tenant_id)
    ]


async def test_contacts_written_two_ways_are_merged_at_ingress_start(gateway: Gateway) -> None:
    tenant_id, key = await _tenant(gateway, "BR")
    await _insert_contacts(
        gateway,
        tenant_id,
        [
            {
                "identifier": "11988887777",
                "tags": ["old"],
                "active": False,
                "inactiveReason": "STOP",
            },
            {"identifier": "011988887777", "tags": ["older"]},
            {"identifier": "5511988887777", "tags": ["new"], "name": "Bia"},
            {"identifier": "00000000"},  # never a number: left as it is
        ],
    )

    gateway.stack.stop("ingress_api")
    gateway.stack.start("ingress_api")

    async def merged() -> bool:
        return 2 == len(await _contacts(gateway, tenant_id))

    await eventually(merged)
    [kept, left] = sorted(
        await _contacts(gateway, tenant_id), key=lambda c: c["identifier"] != "5511988887777"
    )
    assert ("5511988887777", "Bia", ["new", "old", "older"], False, "STOP") == (
        kept["identifier"],
        kept["name"],
        kept["tags"],
        kept["active"],
        kept["inactiveReason"],
    )
    assert "00000000" == left["identifier"]
    status, found = await gateway.call("GET", "/contacts/(011)%2098888-7777", key=key)
    assert (200, kept["_id"]) == (status, found["id"])


async def test_replicas_normalizing_together_leave_one_contact_and_a_rerun_changes_nothing(
    store: Store,
) -> None:
    await store.tenants.insert_one({"_id": "acme", "name": "acme", "defaultCountry": "BR"})
    now = utcnow()
    await store.contacts.insert_many(
        [
            {
                "_id": f"c{n}",
                "tenantId": "acme",
                "identifier": written,
                "tags": [f"t{n}"],
                "active": True,
                "createdAt": now,
                "updatedAt": now,
            }
            for n, written in enumerate(["11977776666", "011977776666", "5511977776666"])
        ]
    )

    await asyncio.gather(*(normalize_contacts(store) for _ in range(3)))

    [contact] = await store.contacts.find({"tenantId": "acme"}).to_list(None)
    assert ("5511977776666", ["t0", "t1", "t2"]) == (contact["identifier"], contact["tags"])
    assert 0 == await normalize_contacts(store)


async def test_a_routed_send_reads_the_number_in_the_picked_instances_country(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()  # no country of its own
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, view = await gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"defaultCountry": "BR"}
    )
    assert 200 == status, view
    routed = {"tenantId": tenant_id, "clientId": "support", "type": "text", "text": "hi"}

    status, answer = await gateway.call(
        "POST", "/message/send", key=key, json=routed | {"to": "(011) 99999-8888"}
    )
    refused, impossible = await gateway.call(
        "POST", "/message/send", key=key, json=routed | {"to": "(011) 9"}
    )

    assert (202, name) == (status, answer.get("instanceName")), answer
    assert BR_MOBILE == await _stored_to(gateway, key, answer["id"])
    assert (400, [{"path": ["to"], "code": "invalid_phone_number"}]) == (
        refused,
        [{"path": i["path"], "code": i.get("code")} for i in impossible["issues"]],
    )


async def test_listings_find_a_recipient_written_as_people_write_it(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, "BR")
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, wanted = await _text(gateway, key, name, BR_MOBILE)
    assert 202 == status, wanted
    status, other = await _text(gateway, key, name, "+1 (415) 555-0100")
    assert 202 == status, other

    async def found(**params: str) -> list[str]:
        status, body = await gateway.call("GET", "/messages", key=key, params=params)
        assert 200 == status, body
        return [m["id"] for m in body["data"]]

    for written in ("+55 11 99999-8888", "(011) 99999-8888", "99999-8888"):
        assert [wanted["id"]] == await found(search=written), written
    for written in ("+55 (11) 99999-8888", "(011) 99999-8888", BR_MOBILE):
        assert [wanted["id"]] == await found(to=written), written
    status, refused = await gateway.call("GET", "/messages", key=key, params={"to": "(011) 9"})
    assert (400, [{"path": ["to"], "code": "invalid_phone_number"}]) == (
        status,
        [{"path": i["path"], "code": i.get("code")} for i in refused["issues"]],
    )


async def test_sandbox_fail_numbers_are_read_in_the_instances_country(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()  # no country of its own
    name = f"{tenant_id}__support__{uuid.uuid4().hex[:6]}"
    status, created = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": name,
            "webhookUrl": receiver.url(),
            "webhookSecret": "s3cret-s3cret-s3cret",
            "defaultCountry": "BR",
            "providerConfig": {"failNumbers": ["(011) 99999-8888"]},
        },
    )
    assert 201 == status, created
    status, patched = await gateway.call(
        "PATCH",
        f"/instance/{name}",
        key=key,
        json={"providerConfig": {"failNumbers": ["(011) 99999-8888", "(021) 98888-7777"]}},
    )
    assert 200 == status, patched
    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)

    status, answer = await _text(gateway, key, name, "+55 11 99999-8888")
    assert 202 == status, answer

    [failed] = await receiver.wait_for(event_named("message.status", id=answer["id"]))
    told = json.loads(failed.body)["data"]
    assert ("failed", "undeliverable") == (told["status"], told["error"]["code"])


async def test_a_contact_path_naming_a_number_that_cannot_exist_is_400(gateway: Gateway) -> None:
    _, key = await _tenant(gateway, "BR")
    status, saved = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": "+55 11 99999-8888"}
    )
    assert 201 == status, saved

    answers = [
        await gateway.call("GET", "/contacts/+55%2011%209", key=key),
        await gateway.call("PATCH", "/contacts/(011)%209/status", key=key, json={"active": False}),
        await gateway.call("DELETE", "/contacts/123", key=key),
    ]

    for status, answer in answers:
        assert (400, [{"path": ["id"], "code": "invalid_phone_number"}]) == (
            status,
            [{"path": i["path"], "code": i.get("code")} for i in answer["issues"]],
        )
    assert (404, 200) == (
        (await gateway.call("GET", "/contacts/no-such-contact", key=key))[0],
        (await gateway.call("GET", f"/contacts/{saved['id']}", key=key))[0],
    )
    status, deleted = await gateway.call("DELETE", "/contacts/(011)%2099999-8888", key=key)
    assert (200, saved["id"]) == (status, deleted["id"])
