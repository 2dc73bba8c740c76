"""The waha provider end to end, against the WAHA simulator."""

import base64
import json
import uuid

import pytest

from tests.simulators.waha import WahaSimulator
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

PHONE = "5491133334444"
FRIEND = "5491155556666"
STRANGER = "5491177778888"


async def waha_instance(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver, *, scan: bool = True
) -> tuple[str, str, str]:
    """A tenant with a waha instance whose session started (and was scanned open)."""
    session = f"s{uuid.uuid4().hex[:8]}"
    config = {"baseUrl": waha.url, "apiKey": waha.api_key, "session": session}
    _, key, name = await gateway.tenant_with_instance(
        receiver.url(), connect=False, fields={"provider": "waha", "providerConfig": config}
    )
    status, body = await gateway.call("POST", f"/instance/{name}/connect", key=key)
    assert (200, "close", "SCAN_QR_CODE") == (status, body["state"], body["providerStatus"])
    if scan:
        await waha.scan(session, PHONE)
        await receiver.wait_for(event_named("instance.connected", phoneNumber=PHONE))
    return name, key, session


async def send_text(gateway: Gateway, key: str, name: str, to: str) -> str:
    status, body = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": to, "text": "Hello", "lane": "urgent"},
    )
    assert 202 == status, body
    return str(body["id"])


async def test_session_is_created_with_our_signed_callback(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, _, session = await waha_instance(gateway, waha, receiver, scan=False)
    created = waha.sessions[session]
    assert f"{gateway.api}/webhooks/waha/{name}" == created.webhook_url
    assert {"message", "message.ack", "session.status"} == set(created.events)
    assert created.hmac_key


async def test_qr_and_pairing_code_come_from_waha(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await waha_instance(gateway, waha, receiver, scan=False)
    _, qr = await gateway.call("GET", f"/instance/{name}/qr", key=key)
    png = base64.b64decode(qr["qrcode"].partition(",")[2])
    status, pairing = await gateway.call(
        "POST", f"/instance/{name}/pairing-code", key=key, json={"phoneNumber": PHONE}
    )
    assert (b"\x89PNG", 200, 8) == (png[:4], status, len(pairing["pairingCode"]))


async def test_scan_opens_the_instance(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await waha_instance(gateway, waha, receiver)
    _, status = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert ("open", PHONE) == (status["state"], status["phoneNumber"])


async def test_text_goes_to_waha_and_acks_reach_the_tenant(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, session = await waha_instance(gateway, waha, receiver)
    message_id = await send_text(gateway, key, name, FRIEND)
    for state in ("sent", "delivered", "read"):
        await receiver.wait_for(event_named("message.status", id=message_id, status=state))
    sent = [s for s in waha.sent if s["session"] == session]
    assert [("/api/sendText", f"{FRIEND}@c.us", "Hello")] == [
        (s["path"], s["chatId"], s["text"]) for s in sent
    ]
    assert [] == waha.invalid


async def test_inbound_message_reaches_the_tenant(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    _, _, session = await waha_instance(gateway, waha, receiver)
    assert 200 == await waha.inbound(session, FRIEND, "Hola")
    received = await receiver.wait_for(event_named("message.received", **{"from": FRIEND}))
    data = json.loads(received[0].body)["data"]
    assert ("Bruno", "Hola") == (data["pushName"], data["text"])


async def test_forged_callback_is_rejected_and_nothing_is_processed(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    _, _, session = await waha_instance(gateway, waha, receiver)
    assert 401 == await waha.inbound(session, STRANGER, "fake", key="not-the-key")
    assert 200 == await waha.inbound(session, FRIEND, "real")
    await receiver.wait_for(event_named("message.received", **{"from": FRIEND}))
    assert [] == receiver.matching(event_named("message.received", **{"from": STRANGER}))


async def test_server_errors_are_retried(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await waha_instance(gateway, waha, receiver)
    waha.fail_next(500, "Internal server error")
    message_id = await send_text(gateway, key, name, FRIEND)
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))


async def test_reach_out_timelock_holds_cold_contacts_and_lets_replies_through(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, session = await waha_instance(gateway, waha, receiver)
    assert 200 == await waha.inbound(session, FRIEND, "Hi")
    await receiver.wait_for(event_named("message.received", **{"from": FRIEND}))
    waha.timelock(session, 3600)
    cold = await send_text(gateway, key, name, STRANGER)
    paused = await receiver.wait_for(event_named("instance.paused"))
    assert json.loads(paused[0].body)["data"]["until"] is not None
    waha.sessions[session].timelock_ends = None  # WhatsApp would still refuse; the gateway holds
    reply = await send_text(gateway, key, name, FRIEND)
    await receiver.wait_for(event_named("message.status", id=reply, status="sent"))

    async def cold_is_held() -> bool:
        async with gateway.mongo() as client:
            stored = await client.lanegate_test.messages.find_one({"_id": cold})
        return stored is not None and stored["status"] == "deferred"

    await eventually(cold_is_held, timeout=10)
    assert [] == [s for s in waha.sent if s["chatId"] == f"{STRANGER}@c.us"]
