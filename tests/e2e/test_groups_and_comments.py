"""Groups of contacts with their members, and comments on a contact."""

import pytest

from lanegate.store import MOST_PER_WRITE
from tests.support.contacts import many_contacts
from tests.support.gateway import Gateway
from tests.support.keys import scoped_key
from tests.support.receiver import Receiver
from tests.support.tenant_data import tenant_data

pytestmark = pytest.mark.e2e

PEOPLE = ["5491155550001", "5491155550002", "5491155550003"]


async def _contact_ids(gateway: Gateway, key: str) -> list[str]:
    items = [{"identifier": n} for n in PEOPLE]
    status, saved = await gateway.call("POST", "/contacts/batch", key=key, json={"contacts": items})
    assert 200 == status, saved
    return [c["id"] for c in saved["contacts"]]


async def test_groups_hold_contacts_and_count_them(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    ana, beto, carla = await _contact_ids(gateway, key)
    status, vip = await gateway.call(
        "POST", "/groups", key=key, json={"name": "VIP", "description": "best clients"}
    )
    assert (201, 0) == (status, vip["memberCount"])
    path = f"/groups/{vip['id']}"

    status, body = await gateway.call(
        "POST", f"{path}/contacts", key=key, json={"contactIds": [ana, beto, ana]}
    )
    assert (200, 2) == (status, body["changed"])
    _, shown = await gateway.call("GET", path, key=key)
    assert ("VIP", "best clients", 2) == (shown["name"], shown["description"], shown["memberCount"])
    _, members = await gateway.call("GET", f"/contacts?groupId={vip['id']}", key=key)
    assert [PEOPLE[0], PEOPLE[1]] == [c["identifier"] for c in members["contacts"]]
    assert [vip["id"]] == members["contacts"][0]["groupIds"]

    before = await tenant_data(gateway, tenant_id)
    status, body = await gateway.call(
        "POST", f"{path}/contacts", key=key, json={"contactIds": [carla, "nobody"]}
    )
    assert (400, [["contactIds", 1]]) == (status, [i["path"] for i in body["issues"]])
    assert before == await tenant_data(gateway, tenant_id)

    status, body = await gateway.call(
        "POST", f"{path}/contacts/remove", key=key, json={"contactIds": [ana, carla]}
    )
    assert (200, 1) == (status, body["changed"])
    status, renamed = await gateway.call("PATCH", path, key=key, json={"name": "VIPs"})
    assert (200, "VIPs", "best clients") == (status, renamed["name"], renamed["description"])
    status, _ = await gateway.call("PATCH", path, key=key, json={"name": None})
    assert 400 == status
    _, listed = await gateway.call("GET", "/groups", key=key)
    assert ["VIPs"] == [g["name"] for g in listed["groups"]]

    status, body = await gateway.call("DELETE", path, key=key)
    assert (200, True) == (status, body["deleted"])
    _, beto_now = await gateway.call("GET", f"/contacts/{beto}", key=key)
    assert [] == beto_now["groupIds"]
    assert 404 == (await gateway.call("GET", path, key=key))[0]


async def test_a_group_takes_only_the_tenants_own_contacts(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    _, other_key = await gateway.tenant()
    theirs = await _contact_ids(gateway, other_key)
    _, group = await gateway.call("POST", "/groups", key=key, json={"name": "mine"})
    status, body = await gateway.call(
        "POST", f"/groups/{group['id']}/contacts", key=key, json={"contactIds": theirs[:1]}
    )
    assert (400, [["contactIds", 0]]) == (status, [i["path"] for i in body["issues"]])


async def test_comments_on_a_contact_newest_first_by_the_keys_name(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    ana, _, _ = await _contact_ids(gateway, key)
    agent = await scoped_key(gateway, tenant_id, "contacts:write")
    texts = ["called, no answer", "wants the pro plan", "sent the quote"]
    for text in texts:
        status, comment = await gateway.call(
            "POST", f"/contacts/{ana}/comments", key=agent, json={"text": text}
        )
        assert (201, "contacts:write", ana) == (
            status,
            comment["author"]["name"],
            comment["contactId"],
        )

    status, first = await gateway.call("GET", f"/contacts/{PEOPLE[0]}/comments?limit=2", key=key)
    assert (200, texts[:0:-1]) == (status, [c["text"] for c in first["comments"]])
    _, second = await gateway.call(
        "GET", f"/contacts/{ana}/comments?cursor={first['pagination']['next']}", key=key
    )
    assert ([texts[0]], None) == (
        [c["text"] for c in second["comments"]],
        second["pagination"]["next"],
    )

    status, body = await gateway.call(
        "POST", f"/contacts/{ana}/comments", key=key, json={"text": ""}
    )
    assert (400, ["text"]) == (status, body["issues"][0]["path"])
    status, _ = await gateway.call(
        "POST",
        "/contacts/00000000-0000-4000-8000-000000000000/comments",
        key=key,
        json={"text": "x"},
    )
    assert 404 == status
    _, other_key = await gateway.tenant()
    status, _ = await gateway.call("GET", f"/contacts/{ana}/comments", key=other_key)
    assert 404 == status


async def test_sending_to_a_group_queues_its_active_members_as_one_bulk(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    ana, beto, carla = await _contact_ids(gateway, key)
    await gateway.call("PATCH", f"/contacts/{beto}/status", key=key, json={"active": False})
    _, group = await gateway.call("POST", "/groups", key=key, json={"name": "promo"})
    path = f"/groups/{group['id']}"
    await gateway.call("POST", f"{path}/contacts", key=key, json={"contactIds": [ana, beto, carla]})

    send = {"instanceName": name, "text": "{Hola|Buenas}, hay promo"}
    status, sent = await gateway.call("POST", f"{path}/send", key=key, json=send)
    assert (202, 2, [{"contactId": beto, "reason": "inactive"}]) == (
        status,
        sent["accepted"],
        sent["skipped"],
    )
    _, queued = await gateway.call("GET", f"/messages?instanceName={name}", key=key)
    assert [(PEOPLE[2], "bulk"), (PEOPLE[0], "bulk")] == sorted(
        ((m["to"], m["lane"]) for m in queued["data"]), reverse=True
    )

    tenant_b, key_b = await gateway.tenant()
    other = await gateway.instance(tenant_b, key_b, receiver.url(), connect=False)
    for instance, expected in ((other, 403), (f"{tenant_id}__support__nope", 404)):
        status, _ = await gateway.call(
            "POST", f"{path}/send", key=key, json={**send, "instanceName": instance}
        )
        assert expected == status
    status, body = await gateway.call("POST", f"{path}/send", key=key, json={"instanceName": name})
    assert (400, ["text"]) == (status, body["issues"][0]["path"])
    _, queued_after = await gateway.call("GET", f"/messages?instanceName={name}", key=key)
    assert 2 == queued_after["meta"]["total"]


async def test_members_go_in_and_out_over_more_than_one_write(gateway: Gateway) -> None:
    """Putting contacts in a group, taking them out and deleting the group go to the store
    MOST_PER_WRITE contacts at a time, counted over all of them."""
    tenant_id, key = await gateway.tenant()
    ids = await many_contacts(gateway, tenant_id, MOST_PER_WRITE + 10)
    _, group = await gateway.call("POST", "/groups", key=key, json={"name": "many"})
    path = f"/groups/{group['id']}"

    for route, count in ((f"{path}/contacts", len(ids)), (f"{path}/contacts/remove", 0)):
        status, body = await gateway.call("POST", route, key=key, json={"contactIds": ids})
        assert (200, len(ids)) == (status, body["changed"])
        _, listed = await gateway.call("GET", path, key=key)
        assert count == listed["memberCount"]

    await gateway.call("POST", f"{path}/contacts", key=key, json={"contactIds": ids})
    status, _ = await gateway.call("DELETE", path, key=key)
    assert 200 == status
    async with gateway.mongo() as client:
        held = {"tenantId": tenant_id, "groupIds": group["id"]}
        assert 0 == await client.lanegate_test.contacts.count_documents(held)


# A thousand messages through the embedded store: 20 - 40 s here.
@pytest.mark.timeout(300)
async def test_a_group_larger_than_one_bulk_is_queued_in_pages(
    gateway: Gateway, receiver: Receiver
) -> None:
    """1,001 members: more than one bulk request may hold, so the gateway queues them in two
    pages of its own, and every member gets the message."""
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    _, group = await gateway.call("POST", "/groups", key=key, json={"name": "everyone"})
    await many_contacts(gateway, tenant_id, 1001, groupIds=[group["id"]])

    status, sent = await gateway.call(
        "POST",
        f"/groups/{group['id']}/send",
        key=key,
        json={"instanceName": name, "text": "hola"},
    )

    assert (202, 1001, []) == (status, sent["accepted"], sent["skipped"])
    async with gateway.mongo() as client:
        queued = {
            m["to"]
            async for m in client.lanegate_test.messages.find({"tenantId": tenant_id}, {"to": 1})
        }
    assert {f"54911{n:08d}" for n in range(1001)} == queued
