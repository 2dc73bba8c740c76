"""Contacts as leads: made by messages both ways, edited one by one or in batches, filtered."""

from typing import Any

import pytest

from lanegate.store import MOST_PER_WRITE
from tests.simulators.waha import WahaSimulator
from tests.support.gateway import Gateway
from tests.support.keys import scoped_key
from tests.support.receiver import Receiver, event_named
from tests.support.tenant_data import tenant_data

from .test_waha import waha_instance

pytestmark = pytest.mark.e2e

ANA = "5491155550001"
BETO = "5491155550002"
CARLA = "5491155550003"


async def _contact(gateway: Gateway, key: str, ref: str) -> dict[str, Any]:
    status, contact = await gateway.call("GET", f"/contacts/{ref}", key=key)
    assert 200 == status, contact
    return dict(contact)


async def test_inbound_messages_create_contacts_named_by_their_push_name(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    _, key, session = await waha_instance(gateway, waha, receiver)
    status, _ = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": BETO, "name": "Beto (VIP)"}
    )
    assert 201 == status
    for sender in (ANA, BETO):
        assert 200 == await waha.inbound(session, sender, "hola")
        await receiver.wait_for(event_named("message.received", **{"from": sender}))

    ana, beto = await _contact(gateway, key, ANA), await _contact(gateway, key, BETO)
    assert ("Bruno", "Beto (VIP)") == (ana["name"], beto["name"])
    assert ana["lastInboundAt"] is not None
    assert ana["lastInboundAt"] == ana["lastMessageAt"]
    assert ([], {}, [], True) == (ana["tags"], ana["fields"], ana["groupIds"], ana["active"])


async def test_a_send_with_contact_name_makes_a_lead(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = {"instanceName": name, "to": CARLA, "text": "hola", "contactName": "Carla"}
    status, _ = await gateway.call("POST", "/message/text", key=key, json=body)
    assert 202 == status
    carla = await _contact(gateway, key, CARLA)
    assert ("Carla", None, {}) == (carla["name"], carla["lastInboundAt"], carla["fields"])
    assert carla["lastMessageAt"] is not None


async def test_patch_changes_name_tags_and_fields_and_refuses_bad_fields(
    gateway: Gateway,
) -> None:
    tenant_id, key = await gateway.tenant()
    _, created = await gateway.call("POST", "/contacts", key=key, json={"identifier": ANA})
    path = f"/contacts/{created['id']}"
    changes = {"name": "Ana", "tags": ["lead", "lead", "b2b"], "fields": {"city": "Rosario"}}
    status, patched = await gateway.call("PATCH", path, key=key, json=changes)
    assert (200, "Ana", ["b2b", "lead"], {"city": "Rosario"}) == (
        status,
        patched["name"],
        patched["tags"],
        patched["fields"],
    )

    before = await tenant_data(gateway, tenant_id)
    too_many = {f"k{i}": "v" for i in range(51)}
    for fields, where in ((too_many, ["fields"]), ({"a.b": "v"}, ["fields", "a.b"])):
        status, body = await gateway.call("PATCH", path, key=key, json={"fields": fields})
        assert (400, where) == (status, body["issues"][0]["path"][: len(where)]), body
    status, body = await gateway.call("PATCH", path, key=key, json={"owner": "x"})
    assert 400 == status
    assert before == await tenant_data(gateway, tenant_id)
    status, _ = await gateway.call(
        "PATCH", "/contacts/00000000-0000-4000-8000-000000000000", key=key, json={"name": "x"}
    )
    assert 404 == status


async def test_batch_saves_all_or_nothing_with_each_bad_index(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    items = [
        {"identifier": ANA, "name": "Ana", "tags": ["lead"]},
        {"identifier": BETO, "fields": {"plan": "pro"}},
    ]
    status, saved = await gateway.call("POST", "/contacts/batch", key=key, json={"contacts": items})
    assert (200, 2, 0) == (status, saved["created"], saved["updated"]), saved
    assert [ANA, BETO] == [c["identifier"] for c in saved["contacts"]]

    before = await tenant_data(gateway, tenant_id)
    bad = [
        {"identifier": CARLA, "fields": {f"k{i}": "v" for i in range(51)}},
        {"identifier": "+999 1"},
        {"identifier": ANA, "name": "Ana again"},
        {"identifier": f"+{ANA}"},
    ]
    status, body = await gateway.call("POST", "/contacts/batch", key=key, json={"contacts": bad})
    assert 400 == status, body
    assert [0, 1] == sorted({issue["path"][1] for issue in body["issues"]})
    assert before == await tenant_data(gateway, tenant_id)

    repeated = bad[2:]
    status, body = await gateway.call(
        "POST", "/contacts/batch", key=key, json={"contacts": repeated}
    )
    assert (400, [["contacts", 1, "identifier"]]) == (
        status,
        [issue["path"] for issue in body["issues"]],
    )
    too_many = [{"identifier": f"54911{n:08d}"} for n in range(1001)]
    status, _ = await gateway.call("POST", "/contacts/batch", key=key, json={"contacts": too_many})
    assert 400 == status
    assert before == await tenant_data(gateway, tenant_id)

    status, saved = await gateway.call(
        "POST", "/contacts/batch", key=key, json={"contacts": [{"identifier": ANA, "name": "A"}]}
    )
    assert (200, 0, 1, "A", ["lead"]) == (
        status,
        saved["created"],
        saved["updated"],
        saved["contacts"][0]["name"],
        saved["contacts"][0]["tags"],
    )


async def test_batch_delete_by_ids_or_numbers_of_the_tenant_only(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    _, other_key = await gateway.tenant()
    people = [{"identifier": n} for n in (ANA, BETO, CARLA)]
    _, saved = await gateway.call("POST", "/contacts/batch", key=key, json={"contacts": people})
    _, theirs = await gateway.call(
        "POST", "/contacts/batch", key=other_key, json={"contacts": people[:1]}
    )
    ids = [c["id"] for c in saved["contacts"]]

    status, body = await gateway.call(
        "POST", "/contacts/batch-delete", key=other_key, json={"ids": ids}
    )
    assert (200, 0) == (status, body["deleted"])
    status, body = await gateway.call(
        "POST", "/contacts/batch-delete", key=key, json={"ids": ids[:1]}
    )
    assert (200, 1) == (status, body["deleted"])
    status, body = await gateway.call(
        "POST", "/contacts/batch-delete", key=key, json={"identifiers": [f"+{BETO}", CARLA]}
    )
    assert (200, 2) == (status, body["deleted"])
    _, left = await gateway.call("GET", "/contacts", key=key)
    assert [] == left["contacts"]
    assert 200 == (await gateway.call("GET", f"/contacts/{ANA}", key=other_key))[0]
    for both in ({"ids": ids, "identifiers": [ANA]}, {}):
        status, _ = await gateway.call("POST", "/contacts/batch-delete", key=key, json=both)
        assert 400 == status
    assert theirs["created"] == 1


async def test_listing_filters_by_tag_search_and_active_with_a_cursor(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    people = [
        {"identifier": ANA, "name": "Ana Gómez", "tags": ["lead"]},
        {"identifier": BETO, "name": "Beto", "tags": ["lead"]},
        {"identifier": CARLA, "name": "Carla Gómez", "tags": ["client"]},
    ]
    await gateway.call("POST", "/contacts/batch", key=key, json={"contacts": people})
    await gateway.call("PATCH", f"/contacts/{BETO}/status", key=key, json={"active": False})

    async def listed(query: str) -> list[str]:
        status, body = await gateway.call("GET", f"/contacts?{query}", key=key)
        assert 200 == status, body
        return [c["identifier"] for c in body["contacts"]]

    assert [ANA, BETO] == await listed("tag=lead")
    assert [ANA, CARLA] == await listed("search=g%C3%B3mez")
    assert [BETO] == await listed("search=550002")
    assert [ANA, CARLA] == await listed("active=true")
    assert [BETO] == await listed("active=false&tag=lead")
    _, first = await gateway.call("GET", "/contacts?active=true&limit=1", key=key)
    _, second = await gateway.call(
        "GET", f"/contacts?active=true&limit=1&cursor={first['pagination']['next']}", key=key
    )
    assert [CARLA] == [c["identifier"] for c in second["contacts"]]
    status, _ = await gateway.call("GET", "/contacts?active=maybe", key=key)
    assert 400 == status


async def test_contacts_need_the_contacts_scopes(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    keys = {
        scope: await scoped_key(gateway, tenant_id, scope)
        for scope in ("messages:write", "contacts:read")
    }
    body = {"contacts": [{"identifier": ANA}]}
    for scoped in keys.values():
        status, _ = await gateway.call("POST", "/contacts/batch", key=scoped, json=body)
        assert 403 == status
    assert 200 == (await gateway.call("GET", "/contacts", key=keys["contacts:read"]))[0]
    _, page = await gateway.call("GET", "/contacts", key=key)
    assert [] == page["contacts"]


async def test_a_batch_larger_than_one_write_counts_what_each_part_created(
    gateway: Gateway,
) -> None:
    """A batch goes to the store in parts of MOST_PER_WRITE: created and updated add up over
    all of them."""
    _, key = await gateway.tenant()

    def batch(count: int) -> dict[str, object]:
        return {"contacts": [{"identifier": f"54911{n:08d}"} for n in range(count)]}

    first = MOST_PER_WRITE + 10
    status, saved = await gateway.call("POST", "/contacts/batch", key=key, json=batch(first))
    assert (200, first, 0) == (status, saved["created"], saved["updated"])
    # The first part only updates; the second updates 10 and creates 10.
    status, saved = await gateway.call("POST", "/contacts/batch", key=key, json=batch(first + 10))
    assert (200, 10, first, first + 10) == (
        status,
        saved["created"],
        saved["updated"],
        len(saved["contacts"]),
    )
    ids = [c["id"] for c in saved["contacts"]]

    # Deletes go in parts too, the deleted counted over all of them.
    status, body = await gateway.call(
        "POST", "/contacts/batch-delete", key=key, json={"ids": ids[:-1]}
    )
    assert (200, first + 9) == (status, body["deleted"])
    numbers = [f"+54911{n:08d}" for n in range(first + 10)]
    status, body = await gateway.call(
        "POST", "/contacts/batch-delete", key=key, json={"identifiers": numbers}
    )
    assert (200, 1) == (status, body["deleted"])
