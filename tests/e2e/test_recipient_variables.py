"""Per-recipient variables: `{{name}}`, `{{phone}}` and `{{fields.<key>}}` filled from the
contact at send time, before spintax; a missing value refused at accept time when the contact
is known, else its fallback."""

from typing import Any

import pytest

from tests.e2e.test_otp import phone_text
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver
from tests.support.tenant_data import tenant_data

pytestmark = pytest.mark.e2e

ANA, BETO, CARLA, NOBODY = "5491155550001", "5491155550002", "5491155550003", "5491155550009"


async def _contacts(gateway: Gateway, key: str) -> list[str]:
    """Ana has a name and a plan, Beto only a plan, Carla nothing."""
    people: list[dict[str, Any]] = [
        {"identifier": ANA, "name": "Ana", "fields": {"plan": "pro"}},
        {"identifier": BETO, "fields": {"plan": "free"}},
        {"identifier": CARLA},
    ]
    status, saved = await gateway.call(
        "POST", "/contacts/batch", key=key, json={"contacts": people}
    )
    assert 200 == status, saved
    return [c["id"] for c in saved["contacts"]]


async def _text(gateway: Gateway, key: str, name: str, to: str, text: str, **more: Any) -> str:
    """Send a text; the id of the accepted message."""
    body = {"instanceName": name, "to": to, "text": text, "lane": "urgent"} | more
    status, accepted = await gateway.call("POST", "/message/text", key=key, json=body)
    assert 202 == status, accepted
    return str(accepted["id"])


async def test_a_text_is_filled_from_the_contact_when_it_is_sent(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    ana_id, _, _ = await _contacts(gateway, key)
    waiting = await _text(
        gateway, key, name, ANA, "{Hola|Hola} {{name}}, plan {{fields.plan}} ({{phone}})"
    )
    # Filled when it goes, not when it was accepted: the rename made meanwhile shows.
    status, _ = await gateway.call("PATCH", f"/contacts/{ana_id}", key=key, json={"name": "Ana M"})
    assert 200 == status
    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    assert f"Hola Ana M, plan pro ({ANA})" == await phone_text(gateway, waiting)

    named = await _text(gateway, key, name, BETO, "Hi {{name}}", contactName="Beto B")
    assert "Hi Beto B" == await phone_text(gateway, named)
    unknown = await _text(gateway, key, name, NOBODY, "Hi {{name|Cliente}} {{fields.x|}}!")
    assert "Hi Cliente !" == await phone_text(gateway, unknown)
    odd = await _text(gateway, key, name, NOBODY, "Hi {{name}}", contactName="A|b {c}")
    assert "Hi A|b {c}" == await phone_text(gateway, odd)


async def test_a_known_contact_without_the_value_is_refused_at_accept_time(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    await _contacts(gateway, key)
    before = await tenant_data(gateway, tenant_id)

    send = {"instanceName": name, "to": BETO, "text": "Hola {{name}}"}
    status, body = await gateway.call("POST", "/message/text", key=key, json=send)
    assert (400, ["text"]) == (status, body["issues"][0]["path"])
    assert "{{name}}" in body["issues"][0]["message"]
    image = {"instanceName": name, "to": CARLA, "imageUrl": "https://example.com/a.png"}
    status, body = await gateway.call(
        "POST", "/message/image", key=key, json=image | {"caption": "{{fields.plan}}"}
    )
    assert (400, ["caption"]) == (status, body["issues"][0]["path"])

    bulk = [
        {"instanceName": name, "to": ANA, "text": "{{name}} {{fields.plan}}"},
        {"instanceName": name, "to": BETO, "text": "{{fields.plan}} {{name}}"},
        {"instanceName": name, "to": CARLA, "text": "{{name|amigo}} {{fields.plan|-}}"},
    ]
    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": bulk})
    assert (400, [["messages", 1, "text"]]) == (status, [i["path"] for i in body["issues"]])
    assert before == await tenant_data(gateway, tenant_id)

    bulk[1]["text"] = "{{fields.plan}} {{name|}}"
    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": bulk})
    assert (202, 3) == (status, body["accepted"])


async def test_a_group_send_is_filled_per_member_or_refused_whole(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    ids = await _contacts(gateway, key)
    _, group = await gateway.call("POST", "/groups", key=key, json={"name": "all"})
    path = f"/groups/{group['id']}"
    await gateway.call("POST", f"{path}/contacts", key=key, json={"contactIds": ids})
    before = await tenant_data(gateway, tenant_id)

    send = {"instanceName": name, "text": "Hola {{name}}, plan {{fields.plan}}"}
    status, body = await gateway.call("POST", f"{path}/send", key=key, json=send)
    assert 400 == status
    assert [["text"], ["text"]] == [i["path"] for i in body["issues"]]
    assert [ids[1], ids[2]] == [i["message"].split(":")[0].split()[1] for i in body["issues"]]
    assert before == await tenant_data(gateway, tenant_id)

    send["text"] = "Hola {{name|amigo}}, plan {{fields.plan|ninguno}}"
    status, body = await gateway.call("POST", f"{path}/send", key=key, json=send)
    assert (202, 3) == (status, body["accepted"])
    _, listed = await gateway.call("GET", f"/messages?instanceName={name}", key=key)
    texts = {m["to"]: await phone_text(gateway, m["id"]) for m in listed["data"]}
    assert {
        ANA: "Hola Ana, plan pro",
        BETO: "Hola amigo, plan free",
        CARLA: "Hola amigo, plan ninguno",
    } == texts
