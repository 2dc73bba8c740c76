"""Lead sources and pipeline statuses: kept per tenant, named by contacts, moved on delete."""

import pytest

from lanegate.store import MOST_PER_WRITE
from tests.support.contacts import many_contacts
from tests.support.gateway import Gateway
from tests.support.tenant_data import tenant_data

pytestmark = pytest.mark.e2e

ANA = "5491155550001"
BETO = "5491155550002"


async def _create(gateway: Gateway, key: str, path: str, **body: object) -> str:
    status, created = await gateway.call("POST", path, key=key, json=body)
    assert 201 == status, created
    return str(created["id"])


async def test_statuses_form_a_pipeline_in_order(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    won = await _create(gateway, key, "/statuses", name="Won", color="#00AA00", order=3)
    new = await _create(gateway, key, "/statuses", name="New", order=1)
    status, listed = await gateway.call("GET", "/statuses", key=key)
    assert (200, [new, won]) == (status, [s["id"] for s in listed["statuses"]])
    assert ("#9E9E9E", 1) == (listed["statuses"][0]["color"], listed["statuses"][0]["order"])

    status, changed = await gateway.call(
        "PATCH", f"/statuses/{won}", key=key, json={"order": 0, "color": "#112233"}
    )
    assert (200, 0, "#112233", "Won") == (
        status,
        changed["order"],
        changed["color"],
        changed["name"],
    )
    _, shown = await gateway.call("GET", f"/statuses/{won}", key=key)
    assert changed == shown
    for bad in ({"color": "green"}, {"order": -1}, {"name": ""}, {"stage": 2}):
        status, body = await gateway.call("PATCH", f"/statuses/{won}", key=key, json=bad)
        assert 400 == status, (bad, body)
    _, other_key = await gateway.tenant()
    assert 404 == (await gateway.call("GET", f"/statuses/{won}", key=other_key))[0]
    _, theirs = await gateway.call("GET", "/statuses", key=other_key)
    assert [] == theirs["statuses"]


async def test_contacts_take_a_known_source_and_status_and_filter_by_them(
    gateway: Gateway,
) -> None:
    _, key = await gateway.tenant()
    ads = await _create(gateway, key, "/sources", name="Ads")
    new = await _create(gateway, key, "/statuses", name="New")
    await gateway.call(
        "POST",
        "/contacts/batch",
        key=key,
        json={"contacts": [{"identifier": n} for n in (ANA, BETO)]},
    )
    status, ana = await gateway.call(
        "PATCH", f"/contacts/{ANA}", key=key, json={"sourceId": ads, "statusId": new}
    )
    assert (200, ads, new) == (status, ana["sourceId"], ana["statusId"])
    for field in ("sourceId", "statusId"):
        status, body = await gateway.call(
            "PATCH", f"/contacts/{BETO}", key=key, json={field: "no-such-id"}
        )
        assert (400, [field]) == (status, body["issues"][0]["path"])
    for query in (f"sourceId={ads}", f"statusId={new}"):
        _, page = await gateway.call("GET", f"/contacts?{query}", key=key)
        assert [ANA] == [c["identifier"] for c in page["contacts"]]


async def test_deleting_one_in_use_answers_409_with_the_count_unless_reassigned(
    gateway: Gateway,
) -> None:
    tenant_id, key = await gateway.tenant()
    new = await _create(gateway, key, "/statuses", name="New")
    lost = await _create(gateway, key, "/statuses", name="Lost")
    for number in (ANA, BETO):
        await gateway.call("POST", "/contacts", key=key, json={"identifier": number})
        await gateway.call("PATCH", f"/contacts/{number}", key=key, json={"statusId": new})

    before = await tenant_data(gateway, tenant_id)
    status, body = await gateway.call("DELETE", f"/statuses/{new}", key=key)
    assert (409, 2, "CONFLICT") == (status, body["count"], body["code"])
    for target in ("nope", new):
        status, body = await gateway.call("DELETE", f"/statuses/{new}?reassignTo={target}", key=key)
        assert (400, ["reassignTo"]) == (status, body["issues"][0]["path"])
    assert before == await tenant_data(gateway, tenant_id)

    status, body = await gateway.call("DELETE", f"/statuses/{new}?reassignTo={lost}", key=key)
    assert (200, True, 2) == (status, body["deleted"], body["reassigned"])
    _, page = await gateway.call("GET", f"/contacts?statusId={lost}", key=key)
    assert [ANA, BETO] == [c["identifier"] for c in page["contacts"]]
    assert 404 == (await gateway.call("GET", f"/statuses/{new}", key=key))[0]
    ads = await _create(gateway, key, "/sources", name="Ads")
    status, body = await gateway.call("DELETE", f"/sources/{ads}", key=key)
    assert (200, 0) == (status, body["reassigned"])
    assert 404 == (await gateway.call("DELETE", f"/sources/{ads}", key=key))[0]


async def test_a_reassignment_moves_contacts_over_more_than_one_write(gateway: Gateway) -> None:
    """Contacts move to the new status MOST_PER_WRITE at a time, counted over all of them."""
    tenant_id, key = await gateway.tenant()
    new = await _create(gateway, key, "/statuses", name="New")
    lost = await _create(gateway, key, "/statuses", name="Lost")
    count = MOST_PER_WRITE + 10
    await many_contacts(gateway, tenant_id, count, statusId=new)

    status, body = await gateway.call("DELETE", f"/statuses/{new}?reassignTo={lost}", key=key)

    assert (200, count) == (status, body["reassigned"])
    async with gateway.mongo() as client:
        moved = {"tenantId": tenant_id, "statusId": lost}
        assert count == await client.lanegate_test.contacts.count_documents(moved)
