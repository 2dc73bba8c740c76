"""scheduledAt, approval, cancel, expiry, disconnects and bans, across the real services."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import pytest

from lanegate.broker import Broker
from lanegate.events import accepted, new_id, utcnow
from tests.conftest import AMQP_URL
from tests.support.gateway import Gateway, eventually, hearing
from tests.support.messages import DB, outbox_counts, send, statuses, stored, wait_status
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_a_scheduled_message_is_not_sent_before_its_time(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    scheduled = iso_in(2)
    message_id = await send(gateway, key, name, scheduledAt=scheduled)

    await wait_status(gateway, "sent", message_id)
    [doc] = await stored(gateway, message_id)
    assert doc["sentAt"] >= datetime.fromisoformat(scheduled)
    _, view = await gateway.call("GET", f"/message/{message_id}", key=key)
    assert scheduled[:23] == view["scheduledAt"][:23]


async def test_a_message_requiring_approval_waits_until_approved(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    status, answer = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491100000003", "text": "ok?", "requiresApproval": True},
    )
    assert (202, "pending_approval") == (status, answer["status"])
    message_id = answer["id"]
    await asyncio.sleep(1)
    assert ["pending_approval"] == await statuses(gateway, message_id)

    status, answer = await gateway.call("POST", f"/message/{message_id}/approve", key=key)
    assert (200, {"id": message_id, "status": "pending"}) == (status, answer)
    await wait_status(gateway, "sent", message_id)
    status, _ = await gateway.call("POST", f"/message/{message_id}/approve", key=key)
    assert 409 == status


async def test_a_rejected_message_is_never_sent(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    rejected = await send(gateway, key, name, requiresApproval=True)
    status, answer = await gateway.call("POST", f"/message/{rejected}/reject", key=key)
    assert (200, "rejected") == (status, answer["status"])
    marker = await send(gateway, key, name)
    await wait_status(gateway, "sent", marker)
    assert ["rejected"] == await statuses(gateway, rejected)
    assert [0] == await outbox_counts(gateway, rejected)


async def test_a_canceled_message_is_never_sent_and_a_sent_one_cannot_be_canceled(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    canceled = await send(gateway, key, name)
    status, answer = await gateway.call("POST", f"/message/{canceled}/cancel", key=key)
    assert (200, "canceled") == (status, answer["status"])

    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    marker = await send(gateway, key, name)
    await wait_status(gateway, "sent", marker)
    assert ["canceled"] == await statuses(gateway, canceled)
    assert [0] == await outbox_counts(gateway, canceled)
    status, answer = await gateway.call("POST", f"/message/{marker}/cancel", key=key)
    assert 409 == status
    assert "CONFLICT" == answer["code"]


async def test_a_message_tried_once_is_never_canceled_and_a_flush_asks_the_provider(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    on_phone, not_on_phone, untried = [await send(gateway, key, name) for _ in range(3)]
    # Back in `pending` after attempts that timed out; the phone got the first one.
    async with gateway.mongo() as client:
        db = client[DB]
        await db.messages.update_many(
            {"_id": {"$in": [on_phone, not_on_phone]}}, {"$set": {"attempts": 1}}
        )
        await db.sandbox_outbox.insert_one(
            {"_id": on_phone, "instanceName": name, "providerMessageId": "SBXTEST", "received": 1}
        )

    status, answer = await gateway.call("POST", f"/message/{on_phone}/cancel", key=key)
    assert (409, "CONFLICT") == (status, answer["code"])
    assert "may have reached the phone" in answer["error"]
    async with hearing(AMQP_URL, gateway.namespace, "message.canceled") as next_event:
        status, answer = await gateway.call("POST", f"/instance/{name}/queue/flush", key=key)
        assert (200, 3) == (status, answer["flushed"])
        # Withdrawn through provider-sender, which tells the scheduler it will never go.
        assert (not_on_phone, "canceled") == itemgetter("messageId", "status")(await next_event())

    await wait_status(gateway, "sent", on_phone)
    await wait_status(gateway, "canceled", not_on_phone, untried)
    [hook] = await receiver.wait_for(event_named("message.status", id=on_phone, status="sent"))
    assert "SBXTEST" == json.loads(hook.body)["data"]["providerMessageId"]


async def test_a_tried_message_past_its_valid_until_ends_as_the_phone_says(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    on_phone, not_on_phone = [await send(gateway, key, name, validUntil=iso_in(3)) for _ in "ab"]
    async with gateway.mongo() as client:
        db = client[DB]
        await db.messages.update_many(
            {"_id": {"$in": [on_phone, not_on_phone]}}, {"$set": {"attempts": 1}}
        )
        await db.sandbox_outbox.insert_one(
            {"_id": on_phone, "instanceName": name, "providerMessageId": "SBXLATE", "received": 1}
        )

    await wait_status(gateway, "sent", on_phone)
    await wait_status(gateway, "expired", not_on_phone)
    await receiver.wait_for(event_named("message.expired", id=not_on_phone))


async def test_changing_another_tenants_message_reads_as_not_found(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    message_id = await send(gateway, key, name)
    _, other_key = await gateway.tenant()
    for action in ("cancel", "approve", "reject"):
        status, _ = await gateway.call("POST", f"/message/{message_id}/{action}", key=other_key)
        assert 404 == status
    assert ["pending"] == await statuses(gateway, message_id)


async def test_a_message_still_waiting_past_valid_until_expires_and_is_never_sent_late(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    message_id = await send(gateway, key, name, validUntil=iso_in(1))

    await wait_status(gateway, "expired", message_id)
    [hook] = await receiver.wait_for(event_named("message.expired", id=message_id))
    assert "expired" == json.loads(hook.body)["data"]["status"]
    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    marker = await send(gateway, key, name)
    await wait_status(gateway, "sent", marker)
    assert [0] == await outbox_counts(gateway, message_id)


async def test_an_unapproved_message_expires_too(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    message_id = await send(gateway, key, name, requiresApproval=True, validUntil=iso_in(1))
    await wait_status(gateway, "expired", message_id)
    status, _ = await gateway.call("POST", f"/message/{message_id}/approve", key=key)
    assert 409 == status


async def test_deleting_an_instance_announces_it_to_its_scheduler(
    gateway: Gateway, receiver: Receiver
) -> None:
    # The scheduler drops the instance's line when told (test_scheduler_clock covers that).
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    async with hearing(AMQP_URL, gateway.namespace, "instance.configured") as next_event:
        status, _ = await gateway.call("DELETE", f"/instance/{name}", key=key)
        assert 200 == status
        assert name == (await next_event())["instanceName"]


async def test_a_message_accepted_for_an_instance_deleted_meanwhile_is_canceled(
    gateway: Gateway,
) -> None:
    # Stored and announced by a send that read its instance just before the delete ran (the
    # delete canceled what waited, then removed the instance), or by a replica that still
    # trusted its read of the instance; this replica never planned the instance.
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__support__deleted"
    now = utcnow()
    message = {
        "_id": new_id(),
        "tenantId": tenant_id,
        "instanceName": name,
        "provider": "sandbox",
        "to": "5491100000009",
        "type": "text",
        "content": {"text": "late"},
        "lane": "normal",
        "priority": 5,
        "status": "pending",
        "createdAt": now,
        "queuedAt": now,
    }
    async with gateway.mongo() as client:
        await client[DB].messages.insert_one(message)
    broker = Broker(AMQP_URL, gateway.namespace)
    await broker.connect()
    try:
        async with hearing(AMQP_URL, gateway.namespace, "message.canceled") as next_event:
            await broker.publish(accepted(message))
            told = itemgetter("messageId", "status")(await next_event())
    finally:
        await broker.close()

    assert (message["_id"], "canceled") == told
    status, view = await gateway.call("GET", f"/message/{message['_id']}", key=key)
    assert (200, "canceled") == (status, view["status"])


async def test_a_disconnected_instance_holds_its_messages_and_resumes_on_reconnect(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    status, _ = await gateway.call("POST", f"/sandbox/{name}/disconnect", key=key)
    assert 202 == status
    await receiver.wait_for(event_named("instance.disconnected"))
    message_id = await send(gateway, key, name)
    await asyncio.sleep(1.5)
    assert ["pending"] == await statuses(gateway, message_id)

    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    await wait_status(gateway, "sent", message_id)


async def test_a_provider_ban_pauses_the_instance_until_it_connects_again(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    status, _ = await gateway.call(
        "POST", f"/sandbox/{name}/ban", key=key, json={"reason": "spam reports"}
    )
    assert 202 == status
    [hook] = await receiver.wait_for(event_named("instance.paused"))
    data = json.loads(hook.body)["data"]
    assert {"reason": "spam reports", "until": None, "by": "provider"} == data

    message_id = await send(gateway, key, name)
    await asyncio.sleep(1.5)
    assert ["pending"] == await statuses(gateway, message_id)

    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    await wait_status(gateway, "sent", message_id)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"priority": 11}, ["priority"]),
        ({"priority": 0}, ["priority"]),
        ({"validUntil": "2020-01-01T00:00:00Z"}, ["validUntil"]),
        ({"scheduledAt": "tomorrow"}, ["scheduledAt"]),
        ({"scheduledAt": "2099-01-01T00:00:00Z"}, ["scheduledAt"]),
    ],
)
async def test_bad_scheduling_fields_are_refused(
    gateway: Gateway, receiver: Receiver, fields: dict[str, object], path: list[str]
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = {"instanceName": name, "to": "5491100000003", "text": "x"} | fields
    status, answer = await gateway.call("POST", "/message/text", key=key, json=body)
    assert 400 == status
    assert [path] == [issue["path"] for issue in answer["issues"]]


async def test_valid_until_before_scheduled_at_is_refused(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = {
        "instanceName": name,
        "to": "5491100000003",
        "text": "x",
        "scheduledAt": iso_in(120),
        "validUntil": iso_in(60),
    }
    status, answer = await gateway.call("POST", "/message/text", key=key, json=body)
    assert (400, ["validUntil"]) == (status, answer["issues"][0]["path"])


async def test_message_view_shows_the_scheduling_fields(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    message_id = await send(gateway, key, name, priority=8)

    async def shown() -> bool:
        status, view = await gateway.call("GET", f"/message/{message_id}", key=key)
        return status == 200 and view["priority"] == 8 and view["validUntil"] is None

    await eventually(shown, timeout=5)
