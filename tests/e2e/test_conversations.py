"""Conversations: inbound messages kept beside outbound ones, and the chat list with unread."""

from datetime import timedelta
from typing import Any

import pytest

from tests.simulators.waha import WahaSimulator
from tests.support.gateway import Gateway
from tests.support.keys import scoped_key
from tests.support.receiver import Receiver, event_named

from .test_waha import PHONE, waha_instance

pytestmark = pytest.mark.e2e

ANA = "5491155550001"
BETO = "5491155550002"


async def _write(
    waha: WahaSimulator, receiver: Receiver, session: str, sender: str, text: str
) -> None:
    """A contact writes; returns once the tenant was told (so the message is kept)."""
    assert 200 == await waha.inbound(session, sender, text)
    await receiver.wait_for(event_named("message.received", **{"from": sender, "text": text}))


async def _reply(gateway: Gateway, key: str, name: str, to: str, text: str) -> str:
    body = {"instanceName": name, "to": to, "text": text, "lane": "urgent"}
    status, answer = await gateway.call("POST", "/message/text", key=key, json=body)
    assert 202 == status, answer
    return str(answer["id"])


async def _chats(gateway: Gateway, key: str, query: str = "") -> list[dict[str, Any]]:
    status, body = await gateway.call("GET", f"/chats{query}", key=key)
    assert 200 == status, body
    chats: list[dict[str, Any]] = body["chats"]
    return chats


async def test_conversation_shows_both_directions_newest_first_with_receipts(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, session = await waha_instance(gateway, waha, receiver)
    await _write(waha, receiver, session, ANA, "Hola")
    sent_id = await _reply(gateway, key, name, ANA, "Hola Ana, ¿en qué te ayudo?")
    await receiver.wait_for(event_named("message.status", id=sent_id, status="read"))
    await _write(waha, receiver, session, ANA, "Gracias")

    status, first = await gateway.call("GET", f"/contacts/{ANA}/messages?limit=2", key=key)
    assert 200 == status, first
    received, sent = first["messages"]
    assert ("inbound", ANA, PHONE, "Gracias", "received") == (
        received["direction"],
        received["from"],
        received["to"],
        received["text"],
        received["status"],
    )
    assert (sent_id, "outbound", PHONE, ANA, "text", "read") == (
        sent["id"],
        sent["direction"],
        sent["from"],
        sent["to"],
        sent["type"],
        sent["status"],
    )
    assert received["timestamp"] > sent["timestamp"]
    status, second = await gateway.call(
        "GET", f"/contacts/{ANA}/messages?limit=2&cursor={first['pagination']['next']}", key=key
    )
    assert (200, ["Hola"], None) == (
        status,
        [m["text"] for m in second["messages"]],
        second["pagination"]["next"],
    )
    _, other = await gateway.call("GET", f"/contacts/{ANA}/messages?instanceName={name}x", key=key)
    assert [] == other["messages"]


async def test_a_replayed_inbound_message_is_kept_and_counted_once(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, session = await waha_instance(gateway, waha, receiver)
    replayed = f"false_{BETO}@c.us_REPLAYED"
    for _ in range(3):
        assert 200 == await waha.inbound(session, BETO, "¿Hay stock?", message_id=replayed)
    await receiver.wait_for(event_named("message.received", **{"from": BETO}))
    await _write(waha, receiver, session, BETO, "¿Hola?")

    _, page = await gateway.call("GET", f"/contacts/{BETO}/messages", key=key)
    assert ["¿Hola?", "¿Hay stock?"] == [m["text"] for m in page["messages"]]
    [chat] = await _chats(gateway, key, f"?instanceName={name}")
    assert (BETO, 2) == (chat["contact"], chat["unread"])
    # The id is remembered past any provider's redeliveries, then forgotten (a TTL index).
    async with gateway.mongo() as client:
        seen = await client.lanegate_test.inbound_seen.find_one(
            {"instanceName": name, "providerMessageId": replayed}
        )
    assert seen is not None
    assert timedelta(days=8) == seen["expiresAt"] - seen["seenAt"]


async def test_chats_list_newest_first_with_unread_until_reply_or_read(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, session = await waha_instance(gateway, waha, receiver)
    await _write(waha, receiver, session, ANA, "uno")
    await _write(waha, receiver, session, ANA, "dos")
    await _reply(gateway, key, name, BETO, "Hola Beto")

    beto, ana = await _chats(gateway, key)
    assert [(BETO, 0, "outbound", "Hola Beto"), (ANA, 2, "inbound", "dos")] == [
        (c["contact"], c["unread"], c["lastMessage"]["direction"], c["lastMessage"]["text"])
        for c in (beto, ana)
    ]
    assert name == ana["instanceName"]

    await _write(waha, receiver, session, ANA, "tres")
    assert [(ANA, 3), (BETO, 0)] == [
        (c["contact"], c["unread"]) for c in await _chats(gateway, key)
    ]
    await _reply(gateway, key, name, ANA, "Ya va")
    assert 0 == (await _chats(gateway, key))[0]["unread"]
    await _write(waha, receiver, session, ANA, "cuatro")
    assert 1 == (await _chats(gateway, key))[0]["unread"]

    status, read = await gateway.call("POST", f"/chats/{name}/+{ANA}/read", key=key)
    assert (200, 0) == (status, read["unread"])
    assert read["readAt"] is not None
    assert 0 == (await _chats(gateway, key))[0]["unread"]

    status, first = await gateway.call("GET", "/chats?limit=1", key=key)
    assert [ANA] == [c["contact"] for c in first["chats"]]
    _, second = await gateway.call(
        "GET", f"/chats?limit=1&cursor={first['pagination']['next']}", key=key
    )
    assert ([BETO], None) == ([c["contact"] for c in second["chats"]], second["pagination"]["next"])


async def test_reading_a_chat_refuses_what_is_not_there(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await gateway.call("POST", f"/chats/{name}/{ANA}/read", key=key)
    assert 404 == status, body
    status, body = await gateway.call("POST", f"/chats/{name}/+999%201/read", key=key)
    assert (400, ["phone"]) == (status, body["issues"][0]["path"])
    status, body = await gateway.call("GET", "/chats?cursor=garbage", key=key)
    assert (400, ["cursor"]) == (status, body["issues"][0]["path"])


async def test_chats_and_conversations_need_the_contacts_scopes(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    await _reply(gateway, key, name, ANA, "hola")
    keys = {
        scope: await scoped_key(gateway, tenant_id, scope)
        for scope in ("messages:read", "contacts:read")
    }
    for path in ("/chats", f"/contacts/{ANA}/messages"):
        status, body = await gateway.call("GET", path, key=keys["messages:read"])
        assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])
        status, _ = await gateway.call("GET", path, key=keys["contacts:read"])
        assert 200 == status
    status, _ = await gateway.call("POST", f"/chats/{name}/{ANA}/read", key=keys["contacts:read"])
    assert 403 == status
