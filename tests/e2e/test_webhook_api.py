"""The deliveries API: tenant-scoped listing with filters and pages, detail, validation."""

import pytest

from lanegate.broker import Broker
from tests.support.gateway import Gateway, eventually
from tests.support.hooks import delivery, instance, received
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def test_deliveries_are_listed_newest_first_in_pages_with_filters(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    tenant, key, name = await instance(hooks, receiver.url())
    events = [received(tenant, name, n) for n in range(5)]
    await events_broker.publish_many(events)
    await receiver.wait_for(lambda _: True, count=5)

    async def all_recorded() -> bool:
        return all([(await delivery(hooks, e.id)).get("status") == "delivered" for e in events])

    await eventually(all_recorded)
    seen: list[str] = []
    created: list[str] = []
    cursor = None
    while True:
        query = f"/webhooks/deliveries?instanceName={name}&status=delivered&limit=2"
        status, page = await hooks.call(
            "GET", query + (f"&cursor={cursor}" if cursor else ""), key=key
        )
        assert 200 == status, page
        seen += [d["id"] for d in page["deliveries"]]
        created += [d["createdAt"] for d in page["deliveries"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(e.id for e in events) == sorted(seen)
    assert sorted(created, reverse=True) == created

    _, page = await hooks.call("GET", "/webhooks/deliveries?event=message.status", key=key)
    assert [] == page["deliveries"]
    _, page = await hooks.call("GET", "/webhooks/deliveries?since=2999-01-01T00:00:00Z", key=key)
    assert [] == page["deliveries"]

    _, first = await hooks.call("GET", f"/webhooks/deliveries/{events[0].id}", key=key)
    assert ("delivered", 1, 204) == (
        first["status"],
        first["attemptCount"],
        first["attempts"][0]["statusCode"],
    )


async def test_another_tenants_deliveries_stay_hidden(
    hooks: Gateway, events_broker: Broker, receiver: Receiver
) -> None:
    tenant, _, name = await instance(hooks, receiver.url())
    event = received(tenant, name, 1)
    await events_broker.publish(event)
    await receiver.wait_for(lambda _: True)
    _, other_key = await hooks.tenant()

    status, _ = await hooks.call("GET", f"/webhooks/deliveries/{event.id}", key=other_key)
    assert 404 == status
    status, _ = await hooks.call("POST", f"/webhooks/deliveries/{event.id}/replay", key=other_key)
    assert 404 == status
    status, _ = await hooks.call("GET", f"/webhooks/deliveries?instanceName={name}", key=other_key)
    assert 403 == status
    status, page = await hooks.call("GET", "/webhooks/deliveries", key=other_key)
    assert (200, []) == (status, page["deliveries"])


@pytest.mark.parametrize(
    "query",
    ["status=lost", "event=nope", "since=yesterday", "limit=0", "cursor=%%%", "colour=red"],
)
async def test_bad_list_queries_get_a_validation_error(hooks: Gateway, query: str) -> None:
    _, key = await hooks.tenant()
    status, body = await hooks.call("GET", f"/webhooks/deliveries?{query}", key=key)
    assert (400, "Validation error") == (status, body["error"])


async def test_bulk_replay_checks_its_body(hooks: Gateway, receiver: Receiver) -> None:
    _, key, name = await instance(hooks, receiver.url())
    status, body = await hooks.call(
        "POST", "/webhooks/replay", key=key, json={"instanceName": name, "status": "delivered"}
    )
    assert 400 == status
    assert {("since",), ("status",)} == {tuple(i["path"]) for i in body["issues"]}


async def test_webhook_urls_with_credentials_are_refused_at_create_and_patch(
    hooks: Gateway, receiver: Receiver
) -> None:
    tenant, key, name = await instance(hooks, receiver.url())
    status, body = await hooks.call(
        "PATCH", f"/instance/{name}", key=key, json={"webhookUrl": "http://u:p@example.com/"}
    )
    assert (400, ["webhookUrl"]) == (status, body["issues"][0]["path"])
    status, body = await hooks.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": f"{tenant}__support__other",
            "webhookUrl": "http://example.com/\r\nx: 1",
            "webhookSecret": "s3cret-s3cret-s3cret",
        },
    )
    assert (400, ["webhookUrl"]) == (status, body["issues"][0]["path"])
