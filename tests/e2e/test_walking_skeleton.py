"""The foundation's path, end to end across the five real service processes."""

import hashlib
import hmac
import json

import pytest

from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

SECRET = "s3cret-s3cret-s3cret"


def seed_verify_signature(raw_body: bytes, secret: str, signature: str) -> bool:
    """The seed-004 Python recipe, verbatim."""
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return expected == signature


async def test_tenant_key_is_shown_once_and_stored_only_as_a_hash(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.api_keys.find_one({"tenantId": tenant_id})
    assert stored is not None
    assert hashlib.sha256(key.encode()).hexdigest() == stored["keyHash"]
    assert key not in json.dumps(stored, default=str)


async def test_message_goes_from_accept_to_sent_with_signed_webhooks(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__soporte__main"
    status, body = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": name,
            "webhookUrl": receiver.url(),
            "webhookSecret": SECRET,
            "provider": "sandbox",
        },
    )
    assert (201, {"instanceName": name, "status": "close"}) == (status, body)

    status, _ = await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    assert 202 == status
    connected = await receiver.wait_for(event_named("instance.connected", state="open"))
    assert name == json.loads(connected[0].body)["instanceName"]

    status, accepted = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491112345678", "text": "Hello!", "lane": "urgent"},
    )
    assert 202 == status
    assert {"id", "status", "lane", "queuedAt", "instanceState"} == set(accepted)
    assert ("pending", "urgent", "open") == (
        accepted["status"],
        accepted["lane"],
        accepted["instanceState"],
    )

    message_id = accepted["id"]
    for state in ("sent", "delivered", "read"):
        await receiver.wait_for(event_named("message.status", id=message_id, status=state))

    status, message = await gateway.call("GET", f"/message/{message_id}", key=key)
    assert 200 == status
    assert ("sent", None) == (message["status"], message["error"])
    assert message["sentAt"] is not None and message["sentAt"].endswith("Z")

    for request in receiver.requests:
        assert seed_verify_signature(request.body, SECRET, request.headers["x-gateway-signature"])
        envelope = json.loads(request.body)
        assert {"event", "instanceName", "data", "timestamp"} == set(envelope)


async def test_inbound_message_reaches_the_webhook_shaped_as_the_seed(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())

    status, _ = await gateway.call(
        "POST",
        f"/sandbox/{name}/inbound",
        key=key,
        json={"from": "5491112345678", "text": "Hello, I need help", "pushName": "Juan Pérez"},
    )
    assert 202 == status

    [request] = await receiver.wait_for(event_named("message.received"))
    envelope = json.loads(request.body)
    data = envelope["data"]
    assert ("message.received", name) == (envelope["event"], envelope["instanceName"])
    assert {"from", "pushName", "messageType", "text", "messageId", "timestamp"} == set(data)
    assert ("5491112345678", "Juan Pérez", "conversation", "Hello, I need help") == (
        data["from"],
        data["pushName"],
        data["messageType"],
        data["text"],
    )
    assert isinstance(data["timestamp"], int)


async def test_message_waits_while_the_instance_is_closed_and_goes_once_it_opens(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    _, accepted = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491100000001", "text": "hi"},
    )

    async def status_is(expected: str) -> bool:
        _, message = await gateway.call("GET", f"/message/{accepted['id']}", key=key)
        return bool(message["status"] == expected)

    await eventually(lambda: status_is("pending"), timeout=2)
    assert [] == receiver.matching(event_named("message.status"))

    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    await eventually(lambda: status_is("sent"))
