"""A tenant pauses and resumes a number: its messages wait (none dropped) and go on resume.

"Nothing goes out" is shown against a control: a message sent after the held one, through
another instance of the same tenant, goes out while the held one still waits.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AMQP_URL
from tests.e2e.test_cloud_api import cloud_instance, contact_writes
from tests.e2e.test_cloud_api import send_text as send_cloud_text
from tests.simulators.meta import MetaSimulator
from tests.support.gateway import Gateway, eventually, hearing
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

CONTACT = "5491187654321"


async def send(gateway: Gateway, key: str, name: str, **extra: Any) -> str:
    status, body = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": CONTACT, "text": "Hello", "lane": "urgent"} | extra,
    )
    assert 202 == status, body
    return str(body["id"])


async def message(gateway: Gateway, key: str, message_id: str) -> dict[str, Any]:
    _, body = await gateway.call("GET", f"/message/{message_id}", key=key)
    return dict(body)


async def sent(gateway: Gateway, key: str, message_id: str) -> None:
    async def is_sent() -> bool:
        return bool((await message(gateway, key, message_id))["status"] == "sent")

    await eventually(is_sent)


async def held_while_another_goes(
    gateway: Gateway, key: str, held: str, control: str, **extra: Any
) -> str:
    """Send through `held`, then through `control`; once the control's message is sent the
    held one must still be pending. Returns the held message's id."""
    waiting = await send(gateway, key, held, **extra)
    await sent(gateway, key, await send(gateway, key, control))
    assert "pending" == (await message(gateway, key, waiting))["status"]
    return waiting


async def two_open(gateway: Gateway, receiver: Receiver) -> tuple[str, str, str]:
    tenant_id, key, held = await gateway.tenant_with_instance(receiver.url())
    control = await gateway.instance(tenant_id, key, receiver.url())
    return key, held, control


async def test_a_paused_number_sends_nothing_until_resumed(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, control = await two_open(gateway, receiver)

    status, paused = await gateway.call(
        "POST", f"/instance/{name}/pause", key=key, json={"reason": "holiday"}
    )

    assert (200, "holiday", "tenant", None) == (
        status,
        paused["pause"]["reason"],
        paused["pause"]["by"],
        paused["pause"]["until"],
    )
    told = await receiver.wait_for(event_named("instance.paused", reason="holiday"))
    assert {"reason": "holiday", "until": None, "by": "tenant"} == json.loads(told[0].body)["data"]
    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert ("holiday", "tenant") == (shown["pause"]["reason"], shown["pause"]["by"])
    waiting = await held_while_another_goes(gateway, key, name, control)

    status, resumed = await gateway.call("POST", f"/instance/{name}/resume", key=key)

    assert (200, None) == (status, resumed["pause"])
    await sent(gateway, key, waiting)
    told = await receiver.wait_for(event_named("instance.resumed"))
    assert name == json.loads(told[0].body)["instanceName"]
    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert None is shown["pause"]


async def test_a_pause_until_a_time_lifts_itself_then(gateway: Gateway, receiver: Receiver) -> None:
    key, name, control = await two_open(gateway, receiver)
    until = datetime.now(UTC) + timedelta(seconds=4)

    status, paused = await gateway.call(
        "POST", f"/instance/{name}/pause", key=key, json={"until": until.isoformat()}
    )

    assert 200 == status and paused["pause"]["until"].endswith("Z")
    waiting = await held_while_another_goes(gateway, key, name, control)
    await sent(gateway, key, waiting)
    sent_at = datetime.fromisoformat((await message(gateway, key, waiting))["sentAt"])
    assert sent_at >= until.replace(microsecond=until.microsecond // 1000 * 1000)


async def test_resume_lifts_a_provider_ban_too(gateway: Gateway, receiver: Receiver) -> None:
    key, name, control = await two_open(gateway, receiver)
    status, _ = await gateway.call(
        "POST", f"/sandbox/{name}/ban", key=key, json={"reason": "spam_rate_limit"}
    )
    assert 202 == status
    await receiver.wait_for(event_named("instance.paused", reason="spam_rate_limit"))
    waiting = await held_while_another_goes(gateway, key, name, control)

    status, _ = await gateway.call("POST", f"/instance/{name}/resume", key=key)

    assert 200 == status
    await sent(gateway, key, waiting)


async def test_resume_sends_the_message_metas_ban_deferred_at_once(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(131048)  # spam rate limit: the number pauses for an hour
    message_id = await send_cloud_text(gateway, key, name)
    await receiver.wait_for(event_named("instance.paused"))
    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert "provider" == shown["pause"]["by"]

    async def deferred() -> bool:
        async with gateway.mongo() as client:
            stored = await client.lanegate_test.messages.find_one({"_id": message_id})
        return stored is not None and stored["status"] == "deferred"

    await eventually(deferred)

    status, _ = await gateway.call("POST", f"/instance/{name}/resume", key=key)

    assert 200 == status
    await sent(gateway, key, message_id)
    assert [message_id] == [
        s["biz_opaque_callback_data"] for s in meta.sent if s["number"] == number.phone_number_id
    ]


async def test_a_message_meta_paused_goes_back_to_the_scheduler_as_a_hand_back(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(131048)  # spam rate limit: the number pauses for an hour

    async with hearing(AMQP_URL, gateway.namespace, "message.handed_back") as next_event:
        message_id = await send_cloud_text(gateway, key, name)
        deferred = await next_event()
        await gateway.call("POST", f"/instance/{name}/resume", key=key)
        resumed = await next_event()

    assert [(message_id, name)] * 2 == [
        (event["messageId"], event["instanceName"]) for event in (deferred, resumed)
    ]
    await sent(gateway, key, message_id)


async def test_a_tenants_pause_outlasts_a_reconnect(gateway: Gateway, receiver: Receiver) -> None:
    key, name, control = await two_open(gateway, receiver)
    await gateway.call("POST", f"/instance/{name}/pause", key=key, json={})
    await gateway.call("POST", f"/sandbox/{name}/disconnect", key=key)
    await receiver.wait_for(event_named("instance.disconnected"))
    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    await receiver.wait_for(event_named("instance.connected"), count=3)  # two opens, then this

    await held_while_another_goes(gateway, key, name, control)

    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert ("open", "tenant") == (shown["state"], shown["pause"]["by"])


async def test_scheduled_and_expiring_messages_keep_their_rules_while_paused(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, control = await two_open(gateway, receiver)
    await gateway.call("POST", f"/instance/{name}/pause", key=key, json={})
    soon = datetime.now(UTC) + timedelta(seconds=2)

    expiring = await send(gateway, key, name, validUntil=soon.isoformat())

    async def expired() -> bool:
        return bool((await message(gateway, key, expiring))["status"] == "expired")

    await eventually(expired)
    later = datetime.now(UTC) + timedelta(seconds=3)
    scheduled = await held_while_another_goes(
        gateway, key, name, control, scheduledAt=later.isoformat()
    )
    await gateway.call("POST", f"/instance/{name}/resume", key=key)
    await sent(gateway, key, scheduled)
    sent_at = datetime.fromisoformat((await message(gateway, key, scheduled))["sentAt"])
    assert sent_at >= later.replace(microsecond=later.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"until": "2001-01-01T00:00:00Z"}, "until"),
        ({"until": "next tuesday"}, "until"),
        ({"until": "2026-13-45T99:00:00Z"}, "until"),
        ({"reason": "x" * 501}, "reason"),
        ({"forever": True}, "forever"),
    ],
)
async def test_a_bad_pause_is_400_and_changes_nothing(
    gateway: Gateway, receiver: Receiver, body: dict[str, Any], field: str
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, answer = await gateway.call("POST", f"/instance/{name}/pause", key=key, json=body)

    assert (400, "Validation error", [field]) == (
        status,
        answer["error"],
        answer["issues"][0]["path"],
    )
    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert None is shown["pause"]


async def test_pause_and_resume_need_instances_write(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, created = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/keys",
        headers={"apikey": gateway.admin_key},
        json={"name": "sender", "scopes": ["instances:read", "messages:write"]},
    )
    assert 201 == status
    scoped = created["apiKey"]

    for verb in ("pause", "resume"):
        status, body = await gateway.call("POST", f"/instance/{name}/{verb}", key=scoped, json={})
        assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])
    _, other = await gateway.tenant()
    status, _ = await gateway.call("POST", f"/instance/{name}/pause", key=other, json={})
    assert 403 == status
    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert None is shown["pause"]
