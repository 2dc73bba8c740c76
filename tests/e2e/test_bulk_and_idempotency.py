"""Seed-003 send fields, idempotency by externalId, and bulk sends (all or nothing)."""

import asyncio
from typing import Any

import pytest

from ingress_api.accept.accepting import MessageToAccept, content_of, document
from ingress_api.auth import Caller
from ingress_api.schemas.messages import TextMessage
from lanegate.store import MOST_PER_WRITE
from lanegate.store.keys import key_record
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e


async def _count(gateway: Gateway, tenant_id: str) -> int:
    async with gateway.mongo() as client:
        return await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})


async def test_seed_003_fields_are_stored_and_listed(gateway: Gateway, receiver: Receiver) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    status, accepted = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={
            "instanceName": name,
            "to": "5491112345678",
            "text": "Order confirmed",
            "externalId": "ORDER-1",
            "contactName": "Ana",
            "notes": "internal only",
            "messageType": "TRANSACTIONAL",
        },
    )
    assert (202, "ORDER-1") == (status, accepted["externalId"])

    _, page = await gateway.call("GET", "/messages?externalId=ORDER-1", key=key)
    [listed] = page["data"]
    assert ("TRANSACTIONAL", "Ana", "ORDER-1") == (
        listed["messageType"],
        listed["contactName"],
        listed["externalId"],
    )
    assert "internal only" == listed["notes"]  # shown to the tenant, never sent
    _, contact = await gateway.call("GET", "/contacts/5491112345678", key=key)
    assert "Ana" == contact["name"]


async def test_same_external_id_and_body_returns_the_first_message(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    body = {"instanceName": name, "to": "5491112345678", "text": "hi", "externalId": "REF-1"}

    first = await gateway.call("POST", "/message/text", key=key, json=body)
    again = await gateway.call("POST", "/message/text", key=key, json=body)

    assert 202 == first[0]
    assert (200, first[1]["id"]) == (again[0], again[1]["id"])
    status, answer = await gateway.call(
        "POST", "/message/text", key=key, json={**body, "text": "another text"}
    )
    assert (409, "CONFLICT") == (status, answer["code"])
    assert 1 == await _count(gateway, tenant_id)


async def _orphan(
    gateway: Gateway, tenant_id: str, body: dict[str, Any], *, stored: bool = True
) -> str:
    """Claim a first send's key and store its message (unless not `stored`) as its writes
    did, with nothing announcing it: the store restarted before answering (or between the
    two writes), and the client heard 503."""
    parsed = TextMessage.model_validate(body)
    item = MessageToAccept(parsed, "text", content_of("text", parsed))
    instance = {"_id": body["instanceName"], "provider": "sandbox"}
    orphan = document(Caller(tenant_id, "key"), item, instance)
    async with gateway.mongo() as client:
        await client.lanegate_test.message_keys.insert_one(key_record(orphan))
        if stored:
            await client.lanegate_test.messages.insert_one(orphan)
    return str(orphan["_id"])


@pytest.mark.parametrize(("path", "expected"), [("/message/text", 200), ("/message/bulk", 202)])
@pytest.mark.parametrize("stored", [True, False], ids=["message stored", "key claimed only"])
async def test_a_repeat_sends_a_first_message_whose_answer_was_lost(
    gateway: Gateway, receiver: Receiver, path: str, expected: int, stored: bool
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url())
    body = {"instanceName": name, "to": "5491112345678", "text": "hi", "externalId": "LOST-1"}
    orphan = await _orphan(gateway, tenant_id, body, stored=stored)

    bulk = path == "/message/bulk"
    status, answer = await gateway.call(
        "POST", path, key=key, json={"messages": [body]} if bulk else body
    )

    ids = [m["id"] for m in answer["messages"]] if bulk else [answer["id"]]
    assert (expected, [orphan]) == (status, ids)
    await receiver.wait_for(event_named("message.status", id=orphan, status="sent"))
    assert 1 == await _count(gateway, tenant_id)


async def test_racing_identical_requests_queue_one_message(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    body = {"instanceName": name, "to": "5491112345678", "text": "hi", "externalId": "RACE-1"}

    answers = await asyncio.gather(
        *(gateway.call("POST", "/message/text", key=key, json=body) for _ in range(5))
    )

    assert 1 == len({answer["id"] for _, answer in answers})
    assert [200, 200, 200, 200, 202] == sorted(status for status, _ in answers)
    assert 1 == await _count(gateway, tenant_id)


async def test_inactive_contact_is_refused_unless_forced(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    _, contact = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": "5491100000009"}
    )
    await gateway.call(
        "PATCH",
        f"/contacts/{contact['id']}/status",
        key=key,
        json={"active": False, "reason": "opt-out"},
    )
    body = {"instanceName": name, "to": "5491100000009", "text": "hi"}

    status, answer = await gateway.call("POST", "/message/text", key=key, json=body)
    assert (422, "UNPROCESSABLE") == (status, answer["code"])
    assert 0 == await _count(gateway, tenant_id)
    status, _ = await gateway.call("POST", "/message/text", key=key, json={**body, "force": True})
    assert 202 == status


async def test_bulk_accepts_every_type_in_one_request_and_they_are_sent(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url())
    messages: list[dict[str, Any]] = [
        {
            "instanceName": name,
            "to": "5491112345678",
            "text": f"bulk {i}",
            "lane": "urgent",
            "externalId": f"B-{i}",
        }
        for i in range(5)
    ]
    messages.append(
        {
            "type": "image",
            "instanceName": name,
            "to": "5491112345678",
            "imageUrl": "https://x.example/a.jpg",
            "lane": "urgent",
        }
    )

    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": messages})

    assert (202, 6) == (status, body["accepted"])
    assert [f"B-{i}" for i in range(5)] + [None] == [m["externalId"] for m in body["messages"]]
    for message in body["messages"]:
        await receiver.wait_for(event_named("message.status", id=message["id"], status="sent"))

    again, repeat = await gateway.call(
        "POST", "/message/bulk", key=key, json={"messages": messages[:5]}
    )
    assert (202, [m["id"] for m in body["messages"][:5]]) == (
        again,
        [m["id"] for m in repeat["messages"]],
    )
    assert 6 == await _count(gateway, tenant_id)


async def test_bulk_with_bad_items_lists_each_and_queues_nothing(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    good = {"instanceName": name, "to": "5491112345678", "text": "ok"}
    messages = [
        good,
        {**good, "to": "+54911"},
        {**good, "type": "sticker"},
        {**good, "instanceName": f"{tenant_id}__support__missing"},
        {**good, "instanceName": "other__support__main"},
        good,
        {**good, "externalId": "DUP"},
        {**good, "externalId": "DUP"},
    ]

    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": messages})

    assert 400 == status
    assert [
        ["messages", 1, "to"],
        ["messages", 2, "type"],
        ["messages", 3, "instanceName"],
        ["messages", 4, "instanceName"],
        ["messages", 7, "externalId"],
    ] == [issue["path"] for issue in body["issues"]]
    assert 0 == await _count(gateway, tenant_id)


async def test_bulk_takes_at_most_a_thousand(gateway: Gateway, receiver: Receiver) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    item = {"instanceName": name, "to": "5491112345678", "text": "x"}
    status, body = await gateway.call(
        "POST", "/message/bulk", key=key, json={"messages": [item] * 1001}
    )
    assert (400, ["messages"]) == (status, body["issues"][0]["path"])


async def test_a_bulk_larger_than_one_write_stores_every_message_and_names_every_contact(
    gateway: Gateway, receiver: Receiver
) -> None:
    """A bulk's messages and the contacts it names go to the store in parts of
    MOST_PER_WRITE; every one of them is stored."""
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    count = 2 * MOST_PER_WRITE + 50
    items = [
        {"instanceName": name, "to": f"54911{n:08d}", "text": "x", "contactName": f"C{n}"}
        for n in range(count)
    ]

    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": items})

    assert (202, count) == (status, body["accepted"])
    assert count == await _count(gateway, tenant_id)
    async with gateway.mongo() as client:
        named = {
            c["identifier"]: c["name"]
            async for c in client.lanegate_test.contacts.find({"tenantId": tenant_id})
        }
    assert {f"54911{n:08d}": f"C{n}" for n in range(count)} == named
