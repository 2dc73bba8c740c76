"""Hostile provider callbacks: a tenant signing callbacks on its own instance (it chose the
secret) reaches nothing of another tenant's, malformed payloads are refused whole, callback
routes do not reveal which instances exist, replays do nothing twice, and provider-sender
applies only the callbacks ingress-api published."""

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
import aiohttp
import pytest

from lanegate.broker import Broker
from lanegate.events import CALLBACK_SEAL_LABEL, ProviderCallback
from lanegate.providers.cloud_api import hub_signature
from lanegate.providers.waha import waha_signature
from lanegate.secrets import Keyring
from lanegate.signing import event_seal
from tests.conftest import AMQP_URL, SECRET_KEY
from tests.e2e.test_cloud_api import CONTACT, cloud_instance, contact_writes, send_text
from tests.e2e.test_templates import by_name, meta_template, synced
from tests.e2e.test_waha import FRIEND, waha_instance
from tests.e2e.test_waha import send_text as waha_send_text
from tests.simulators.meta import MetaSimulator, Number
from tests.simulators.waha import WahaSimulator
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

OPERATOR = {"$ne": None}
# Values of the wrong type for a field that must be a string.
NOT_STRINGS: list[Any] = [OPERATOR, {"$regex": ".*"}, ["x"], 12345, True, None]


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    hook = Receiver().start()
    yield hook
    hook.stop()


@pytest.fixture
def sink() -> Iterator[Receiver]:
    """Where a simulator's own receipts go when a test wants a message to stay just sent."""
    hook = Receiver(answer=lambda _: 200).start()
    yield hook
    hook.stop()


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={"Content-Type": "application/json"} | headers) as r,
    ):
        answer = await r.json() if r.content_type == "application/json" else None
        return r.status, answer


def told(receiver: Receiver, message_id: str) -> list[str]:
    """The statuses of a message its tenant's webhook heard, in order."""
    heard = receiver.matching(event_named("message.status", id=message_id))
    return [json.loads(r.body)["data"]["status"] for r in heard]


async def stored_message(gateway: Gateway, message_id: str) -> dict[str, Any]:
    async with gateway.mongo() as client:
        found = await client.lanegate_test.messages.find_one({"_id": message_id})
    assert found is not None
    return dict(found)


async def stored_instance(gateway: Gateway, name: str) -> dict[str, Any]:
    async with gateway.mongo() as client:
        found = await client.lanegate_test.instances.find_one({"_id": name})
    assert found is not None
    return dict(found)


async def handled(gateway: Gateway) -> float:
    """provider-sender's consumed events so far (acknowledged or dead-lettered)."""
    queue = f"{gateway.namespace}.provider-sender"
    total = 0.0
    for outcome in ("ack", "dead"):
        total += await gateway.metric(
            "provider_sender", "lanegate_events_consumed_total", queue=queue, outcome=outcome
        )
    return total


async def settled(gateway: Gateway, before: float, count: int) -> None:
    """Wait until provider-sender handled at least `count` events since `before`."""

    async def done() -> bool:
        return await handled(gateway) >= before + count

    await eventually(done)


# ---- Cloud API ---------------------------------------------------------------------------


@dataclass
class CloudPair:
    """Tenant A's message, sent and left without receipts, and tenant B's own instance."""

    a_tenant: str
    a_name: str
    a_number: Number
    message_id: str
    wamid: str
    b_name: str
    b_number: Number
    a_key: str

    def url(self, gateway: Gateway, name: str) -> str:
        return f"{gateway.api}/webhooks/cloud/{name}"


@pytest.fixture
async def cloud_pair(
    gateway: Gateway,
    meta: MetaSimulator,
    receiver: Receiver,
    other_receiver: Receiver,
    sink: Receiver,
) -> AsyncIterator[CloudPair]:
    a_name, a_key, a_number = await cloud_instance(gateway, meta, receiver)
    b_name, _, b_number = await cloud_instance(gateway, meta, other_receiver)
    await contact_writes(meta, a_number, receiver)
    a_number.callback_url = sink.url()  # Meta's own receipts for A's message go nowhere
    message_id = await send_text(gateway, a_key, a_name)
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    wamid = next(s["wamid"] for s in meta.sent if s.get("biz_opaque_callback_data") == message_id)
    await eventually(lambda: _sunk(sink, wamid))
    a_tenant = (await stored_instance(gateway, a_name))["tenantId"]
    yield CloudPair(a_tenant, a_name, a_number, message_id, wamid, b_name, b_number, a_key)


async def _sunk(sink: Receiver, wamid: str) -> bool:
    return len([r for r in sink.requests if wamid.encode() in r.body]) >= 3


def cloud_body(value: dict[str, Any], number: Number) -> bytes:
    metadata = {"display_phone_number": "1555", "phone_number_id": number.phone_number_id}
    fields = {"messaging_product": "whatsapp", "metadata": metadata} | value
    change = {"field": "messages", "value": fields}
    entry = {"id": number.waba_id, "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def status_item(wamid: Any, status: Any = "failed") -> dict[str, Any]:
    return {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": CONTACT,
        "errors": [{"code": 131026, "title": "Forged by tenant B"}],
    }


def inbound_item(sender: str, message_id: str, text: str) -> dict[str, Any]:
    return {
        "from": sender,
        "id": message_id,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }


async def signed_cloud(gateway: Gateway, name: str, number: Number, body: bytes) -> tuple[int, Any]:
    url = f"{gateway.api}/webhooks/cloud/{name}"
    return await post(url, body, {"X-Hub-Signature-256": hub_signature(body, number.app_secret)})


def cloud_forgeries(pair: CloudPair) -> list[tuple[dict[str, Any], list[str | int]]]:
    """Signed-on-B bodies with a value of the wrong type, and the path of that value."""
    value: list[str | int] = ["entry", 0, "changes", 0, "value"]
    forged: list[tuple[dict[str, Any], list[str | int]]] = []
    for bad in NOT_STRINGS:
        forged.append(({"statuses": [status_item(bad)]}, [*value, "statuses", 0, "id"]))
    forged += [
        ({"statuses": [status_item(pair.wamid, OPERATOR)]}, [*value, "statuses", 0, "status"]),
        (
            {"statuses": [status_item(pair.wamid) | {"errors": [{"code": OPERATOR}]}]},
            [*value, "statuses", 0, "errors", 0, "code"],
        ),
        (
            {"statuses": [status_item(pair.wamid) | {"timestamp": OPERATOR}]},
            [*value, "statuses", 0, "timestamp"],
        ),
        ({"statuses": OPERATOR}, [*value, "statuses"]),
        (
            {"messages": [inbound_item(CONTACT, "wamid.x", "hi") | {"from": OPERATOR}]},
            [*value, "messages", 0, "from"],
        ),
        (
            {"messages": [inbound_item(CONTACT, "wamid.x", "hi") | {"id": ["wamid.x"]}]},
            [*value, "messages", 0, "id"],
        ),
        (
            {"messages": [inbound_item(CONTACT, "wamid.x", "hi") | {"text": {"body": 5}}]},
            [*value, "messages", 0, "text", "body"],
        ),
        (
            {"contacts": [{"wa_id": OPERATOR, "profile": {"name": "Eve"}}]},
            [*value, "contacts", 0, "wa_id"],
        ),
    ]
    return forged


async def test_cloud_callbacks_with_values_of_the_wrong_type_are_refused_and_change_nothing(
    gateway: Gateway, cloud_pair: CloudPair, receiver: Receiver
) -> None:
    before = await stored_message(gateway, cloud_pair.message_id)
    answers = []
    for value, path in cloud_forgeries(cloud_pair):
        body = cloud_body(value, cloud_pair.b_number)
        status, answer = await signed_cloud(gateway, cloud_pair.b_name, cloud_pair.b_number, body)
        answers.append((status, answer["error"], path in [i["path"] for i in answer["issues"]]))
    assert [(400, "Validation error", True)] * len(answers) == answers
    assert before == await stored_message(gateway, cloud_pair.message_id)
    assert ["sent"] == told(receiver, cloud_pair.message_id)


async def test_cloud_template_report_with_an_operator_id_is_refused(
    gateway: Gateway, cloud_pair: CloudPair
) -> None:
    value = {
        "event": "APPROVED",
        "message_template_id": OPERATOR,
        "message_template_name": "x",
        "message_template_language": "en",
    }
    change = {"field": "message_template_status_update", "value": value}
    body = json.dumps({"entry": [{"id": cloud_pair.b_number.waba_id, "changes": [change]}]})
    status, answer = await signed_cloud(
        gateway, cloud_pair.b_name, cloud_pair.b_number, body.encode()
    )
    path = ["entry", 0, "changes", 0, "value", "message_template_id"]
    assert (400, True) == (status, path in [i["path"] for i in answer["issues"]])


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b'{"entry": {"$gt": 0}}'])
async def test_cloud_callback_that_is_not_metas_shape_is_refused(
    gateway: Gateway, cloud_pair: CloudPair, raw: bytes
) -> None:
    status, answer = await signed_cloud(gateway, cloud_pair.b_name, cloud_pair.b_number, raw)
    assert (400, "Validation error") == (status, answer["error"])


async def test_another_tenants_wamid_through_ones_own_instance_touches_nothing(
    gateway: Gateway, meta: MetaSimulator, cloud_pair: CloudPair, receiver: Receiver
) -> None:
    before = await stored_message(gateway, cloud_pair.message_id)
    started = await handled(gateway)
    forged = [status_item(cloud_pair.wamid, s) for s in ("delivered", "read", "failed")]
    for item in forged:
        body = cloud_body({"statuses": [item]}, cloud_pair.b_number)
        status, _ = await signed_cloud(gateway, cloud_pair.b_name, cloud_pair.b_number, body)
        assert 200 == status
    await settled(gateway, started, len(forged))
    assert before == await stored_message(gateway, cloud_pair.message_id)
    assert ["sent"] == told(receiver, cloud_pair.message_id)
    # The same receipt on A's own instance is applied: the wamid was the real one.
    body = cloud_body({"statuses": [status_item(cloud_pair.wamid, "read")]}, cloud_pair.a_number)
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    await receiver.wait_for(event_named("message.status", id=cloud_pair.message_id, status="read"))


async def test_replayed_cloud_inbound_is_told_once_and_does_not_extend_the_window(
    gateway: Gateway, cloud_pair: CloudPair, receiver: Receiver
) -> None:
    sender, later = "5491100001111", "5491100002222"
    body = cloud_body(
        {"messages": [inbound_item(sender, "wamid.replayed-once", "hello")]}, cloud_pair.a_number
    )
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    await receiver.wait_for(event_named("message.received", **{"from": sender}))
    window = await _window(gateway, cloud_pair.a_name, sender)
    # Replayed after provider-sender restarts: what it saw is in the store, not its memory.
    gateway.stack.stop("provider_sender")
    gateway.stack.start("provider_sender")
    started = await handled(gateway)
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    other = cloud_body(
        {"messages": [inbound_item(later, "wamid.after-the-replay", "hi")]}, cloud_pair.a_number
    )
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, other))[0]
    await receiver.wait_for(event_named("message.received", **{"from": later}))
    await settled(gateway, started, 2)
    assert 1 == len(receiver.matching(event_named("message.received", **{"from": sender})))
    assert window == await _window(gateway, cloud_pair.a_name, sender)


async def test_a_callback_for_another_number_of_the_same_app_is_not_applied(
    gateway: Gateway, cloud_pair: CloudPair, receiver: Receiver
) -> None:
    """One Meta app may serve many numbers and post every one's callbacks to one URL: what
    another number (here tenant B's) received is never told as this instance's."""
    theirs, ours = "5491100004444", "5491100005555"
    started = await handled(gateway)
    for sender, number in ((theirs, cloud_pair.b_number), (ours, cloud_pair.a_number)):
        item = inbound_item(sender, f"wamid.{sender}", "hi")
        body = cloud_body({"messages": [item]}, number)
        assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    await receiver.wait_for(event_named("message.received", **{"from": ours}))
    await settled(gateway, started, 2)
    assert [] == receiver.matching(event_named("message.received", **{"from": theirs}))
    async with gateway.mongo() as client:
        windows = client.lanegate_test.conversation_windows
        assert None is await windows.find_one({"contact": theirs})


async def _window(gateway: Gateway, name: str, contact: str) -> datetime:
    async with gateway.mongo() as client:
        found = await client.lanegate_test.conversation_windows.find_one(
            {"instanceName": name, "contact": contact}
        )
    assert found is not None
    opened: datetime = found["lastInboundAt"]
    return opened


async def test_replayed_receipt_makes_no_second_webhook(
    gateway: Gateway, cloud_pair: CloudPair, receiver: Receiver
) -> None:
    body = cloud_body(
        {"statuses": [status_item(cloud_pair.wamid, "delivered")]}, cloud_pair.a_number
    )
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    delivered = event_named("message.status", id=cloud_pair.message_id, status="delivered")
    await receiver.wait_for(delivered)
    first = await stored_message(gateway, cloud_pair.message_id)
    started = await handled(gateway)
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    await settled(gateway, started, 1)
    assert 1 == len(receiver.matching(delivered))
    assert first == await stored_message(gateway, cloud_pair.message_id)


async def test_replayed_failed_receipt_pauses_the_number_once(
    gateway: Gateway, cloud_pair: CloudPair, receiver: Receiver
) -> None:
    spam = {"errors": [{"code": 131048, "title": "Spam rate limit hit"}]}
    body = cloud_body({"statuses": [status_item(cloud_pair.wamid) | spam]}, cloud_pair.a_number)
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    paused = event_named("instance.paused")
    await receiver.wait_for(paused)
    status, _ = await gateway.call(
        "POST", f"/instance/{cloud_pair.a_name}/resume", key=cloud_pair.a_key
    )
    assert 200 == status
    await receiver.wait_for(event_named("instance.resumed"))

    started = await handled(gateway)
    assert 200 == (await signed_cloud(gateway, cloud_pair.a_name, cloud_pair.a_number, body))[0]
    await settled(gateway, started, 1)

    assert None is (await stored_instance(gateway, cloud_pair.a_name)).get("paused")
    assert 1 == len(receiver.matching(paused))


def template_update(number: Number, template: dict[str, Any], event: str, at: int) -> bytes:
    """Meta's signed-shape template status callback, as of `at` (epoch seconds)."""
    value = {
        "event": event,
        "message_template_id": int(template["id"]),
        "message_template_name": template["name"],
        "message_template_language": template["language"],
        "reason": "NONE",
    }
    change = {"field": "message_template_status_update", "value": value}
    entry = {"id": number.waba_id, "time": at, "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


async def _template_sync_handled(gateway: Gateway) -> float:
    queue = f"{gateway.namespace}.template-sync"
    return await gateway.metric(
        "template_sync", "lanegate_events_consumed_total", queue=queue, outcome="ack"
    )


async def test_a_replayed_older_template_status_does_not_undo_a_newer_one(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template(f"promo_{int(time.time() * 1000) % 10**8}", "Oi {{1}}")
    name, key, number, answer = await synced(gateway, meta, receiver, [template])
    ours = by_name(answer)[template["name"]]["id"]
    now = int(time.time())
    older = template_update(number, template, "PAUSED", now - 60)
    newer = template_update(number, template, "APPROVED", now)
    told = event_named("template.status", id=ours)
    for body, count in ((older, 1), (newer, 2)):
        assert 200 == (await signed_cloud(gateway, name, number, body))[0]
        await receiver.wait_for(told, count=count)

    started = await _template_sync_handled(gateway)
    assert 200 == (await signed_cloud(gateway, name, number, older))[0]

    async def consumed() -> bool:
        return await _template_sync_handled(gateway) > started

    await eventually(consumed)
    _, shown = await gateway.call("GET", f"/templates/{ours}", key=key)
    assert "APPROVED" == shown["data"]["status"]
    assert 2 == len(receiver.matching(told))


# ---- WAHA --------------------------------------------------------------------------------


@dataclass
class WahaPair:
    """Tenant A's WAHA message, sent and left without acks, and tenant B's own instance."""

    a_name: str
    a_key: str
    a_session: str
    message_id: str
    waha_id: str
    b_name: str
    b_session: str


@pytest.fixture
async def waha_pair(
    gateway: Gateway,
    waha: WahaSimulator,
    receiver: Receiver,
    other_receiver: Receiver,
    sink: Receiver,
) -> AsyncIterator[WahaPair]:
    a_name, a_key, a_session = await waha_instance(gateway, waha, receiver)
    b_name, _, b_session = await waha_instance(gateway, waha, other_receiver)
    real_url = waha.sessions[a_session].webhook_url
    waha.sessions[a_session].webhook_url = sink.url()  # WAHA's own acks go nowhere
    message_id = await waha_send_text(gateway, a_key, a_name, FRIEND)
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    waha_id = (await stored_message(gateway, message_id))["providerMessageId"]
    await eventually(lambda: _sunk(sink, waha_id))
    waha.sessions[a_session].webhook_url = real_url
    yield WahaPair(a_name, a_key, a_session, message_id, waha_id, b_name, b_session)


def waha_body(event: str, session: Any, payload: Any, *, at_ms: Any = None) -> bytes:
    body = {
        "id": "evt_forged",
        "timestamp": int(time.time() * 1000) if at_ms is None else at_ms,
        "event": event,
        "session": session,
        "payload": payload,
        "engine": "WEBJS",
    }
    return json.dumps(body).encode()


async def signed_waha(
    gateway: Gateway, waha: WahaSimulator, name: str, session: str, body: bytes
) -> tuple[int, Any]:
    url = f"{gateway.api}/webhooks/waha/{name}"
    key = waha.sessions[session].hmac_key
    return await post(url, body, {"X-Webhook-Hmac": waha_signature(body, key)})


def waha_inbound(sender: str, message_id: str, text: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "timestamp": int(time.time()),
        "from": f"{sender}@c.us",
        "fromMe": False,
        "body": text,
        "hasMedia": False,
        "_data": {"notifyName": "Eve"},
    }


def waha_forgeries(pair: WahaPair) -> list[tuple[bytes, list[str | int]]]:
    session = pair.b_session
    forged: list[tuple[bytes, list[str | int]]] = []
    for bad in NOT_STRINGS:
        ack = {"id": bad, "ack": -1, "fromMe": True}
        forged.append((waha_body("message.ack", session, ack), ["payload", "id"]))
    inbound = waha_inbound("5491100003333", "false_x", "hi")
    forged += [
        (waha_body("message.ack", session, {"id": pair.waha_id, "ack": "3"}), ["payload", "ack"]),
        (
            waha_body("message.ack", session, {"id": pair.waha_id, "ack": OPERATOR}),
            ["payload", "ack"],
        ),
        (waha_body("message", session, inbound | {"from": OPERATOR}), ["payload", "from"]),
        (waha_body("message", session, inbound | {"id": ["false_x"]}), ["payload", "id"]),
        (waha_body("message", session, inbound | {"fromMe": "false"}), ["payload", "fromMe"]),
        (waha_body("message", session, inbound | {"timestamp": "1"}), ["payload", "timestamp"]),
        (waha_body("session.status", session, {"status": OPERATOR}), ["payload", "status"]),
        (
            waha_body("session.status", session, {"status": "WORKING", "me": {"id": OPERATOR}}),
            ["payload", "me", "id"],
        ),
        (waha_body("session.status", session, {"status": "STOPPED"}, at_ms="0"), ["timestamp"]),
        (waha_body("message.ack", OPERATOR, {"id": pair.waha_id, "ack": 3}), ["session"]),
        (waha_body("message.ack", session, OPERATOR), ["payload", "id"]),
    ]
    return forged


async def test_waha_callbacks_with_values_of_the_wrong_type_are_refused_and_change_nothing(
    gateway: Gateway, waha: WahaSimulator, waha_pair: WahaPair, receiver: Receiver
) -> None:
    before = await stored_message(gateway, waha_pair.message_id)
    answers = []
    for body, path in waha_forgeries(waha_pair):
        status, answer = await signed_waha(
            gateway, waha, waha_pair.b_name, waha_pair.b_session, body
        )
        answers.append((status, answer["error"], path in [i["path"] for i in answer["issues"]]))
    assert [(400, "Validation error", True)] * len(answers) == answers
    assert before == await stored_message(gateway, waha_pair.message_id)
    assert ["sent"] == told(receiver, waha_pair.message_id)


async def test_another_tenants_waha_id_through_ones_own_instance_touches_nothing(
    gateway: Gateway, waha: WahaSimulator, waha_pair: WahaPair, receiver: Receiver
) -> None:
    before = await stored_message(gateway, waha_pair.message_id)
    started = await handled(gateway)
    for ack in (2, 3, -1):
        payload = {"id": waha_pair.waha_id, "from": f"{FRIEND}@c.us", "fromMe": True, "ack": ack}
        body = waha_body("message.ack", waha_pair.b_session, payload)
        assert (
            200
            == (await signed_waha(gateway, waha, waha_pair.b_name, waha_pair.b_session, body))[0]
        )
    await settled(gateway, started, 3)
    assert before == await stored_message(gateway, waha_pair.message_id)
    assert ["sent"] == told(receiver, waha_pair.message_id)
    # The same ack on A's own instance is applied: the id was the real one.
    payload = {"id": waha_pair.waha_id, "from": f"{FRIEND}@c.us", "fromMe": True, "ack": 3}
    body = waha_body("message.ack", waha_pair.a_session, payload)
    assert 200 == (await signed_waha(gateway, waha, waha_pair.a_name, waha_pair.a_session, body))[0]
    await receiver.wait_for(event_named("message.status", id=waha_pair.message_id, status="read"))


async def test_waha_callback_naming_another_session_is_not_applied(
    gateway: Gateway, waha: WahaSimulator, waha_pair: WahaPair, receiver: Receiver
) -> None:
    before = await stored_message(gateway, waha_pair.message_id)
    started = await handled(gateway)
    payload = {"id": waha_pair.waha_id, "fromMe": True, "ack": 3}
    body = waha_body("message.ack", waha_pair.b_session, payload)
    # Signed with A's key on A's instance, but about B's session.
    assert 200 == (await signed_waha(gateway, waha, waha_pair.a_name, waha_pair.a_session, body))[0]
    await settled(gateway, started, 1)
    assert before == await stored_message(gateway, waha_pair.message_id)


async def test_replayed_waha_inbound_is_told_once(
    gateway: Gateway, waha: WahaSimulator, waha_pair: WahaPair, receiver: Receiver
) -> None:
    sender, later = "5491100004444", "5491100005555"
    body = waha_body(
        "message", waha_pair.a_session, waha_inbound(sender, f"false_{sender}@c.us_R1", "hello")
    )
    name, session = waha_pair.a_name, waha_pair.a_session
    assert 200 == (await signed_waha(gateway, waha, name, session, body))[0]
    await receiver.wait_for(event_named("message.received", **{"from": sender}))
    window = await _window(gateway, name, sender)
    started = await handled(gateway)
    assert 200 == (await signed_waha(gateway, waha, name, session, body))[0]
    other = waha_body("message", session, waha_inbound(later, f"false_{later}@c.us_R2", "hi"))
    assert 200 == (await signed_waha(gateway, waha, name, session, other))[0]
    await receiver.wait_for(event_named("message.received", **{"from": later}))
    await settled(gateway, started, 2)
    assert 1 == len(receiver.matching(event_named("message.received", **{"from": sender})))
    assert window == await _window(gateway, name, sender)


async def test_stale_waha_session_status_is_ignored(
    gateway: Gateway, waha: WahaSimulator, waha_pair: WahaPair, receiver: Receiver
) -> None:
    name, session = waha_pair.a_name, waha_pair.a_session
    hour_ago = int((time.time() - 3600) * 1000)
    stale = waha_body("session.status", session, {"status": "STOPPED"}, at_ms=hour_ago)
    started = await handled(gateway)
    assert 200 == (await signed_waha(gateway, waha, name, session, stale))[0]
    await settled(gateway, started, 1)
    assert "open" == (await stored_instance(gateway, name))["state"]
    fresh = waha_body("session.status", session, {"status": "STOPPED"})
    assert 200 == (await signed_waha(gateway, waha, name, session, fresh))[0]

    async def closed() -> bool:
        return bool("close" == (await stored_instance(gateway, name))["state"])

    await eventually(closed)


async def test_session_status_older_than_a_logout_is_ignored(
    gateway: Gateway, waha: WahaSimulator, waha_pair: WahaPair, sink: Receiver
) -> None:
    name, session = waha_pair.a_name, waha_pair.a_session
    waha.sessions[session].webhook_url = sink.url()  # only the logout itself says "close"
    before_logout = int(time.time() * 1000) - 1
    status, _ = await gateway.call("POST", f"/instance/{name}/logout", key=waha_pair.a_key)
    assert 200 == status
    assert "close" == (await stored_instance(gateway, name))["state"]
    started = await handled(gateway)
    working = waha_body("session.status", session, {"status": "WORKING"}, at_ms=before_logout)
    assert 200 == (await signed_waha(gateway, waha, name, session, working))[0]
    await settled(gateway, started, 1)
    assert "close" == (await stored_instance(gateway, name))["state"]


# ---- No instance-name enumeration --------------------------------------------------------


async def test_unknown_instance_and_bad_signature_get_the_same_answer(
    gateway: Gateway, cloud_pair: CloudPair
) -> None:
    body = cloud_body({"statuses": [status_item("wamid.x", "read")]}, cloud_pair.b_number)
    forged = {"X-Hub-Signature-256": hub_signature(body, "not-the-secret")}
    waha_forged = {"X-Webhook-Hmac": waha_signature(body, "not-the-key")}
    answers = [
        await post(f"{gateway.api}/webhooks/cloud/{cloud_pair.b_name}", body, forged),
        await post(f"{gateway.api}/webhooks/cloud/nobody__support__000000", body, forged),
        await post(f"{gateway.api}/webhooks/waha/{cloud_pair.b_name}", body, waha_forged),
        await post(f"{gateway.api}/webhooks/waha/nobody__support__000000", body, waha_forged),
        await post(f"{gateway.api}/webhooks/cloud/{cloud_pair.b_name}", body, {}),
    ]
    assert [answers[0]] * len(answers) == answers
    assert 401 == answers[0][0]


async def test_handshake_answers_unknown_instance_like_a_wrong_token(
    gateway: Gateway, cloud_pair: CloudPair
) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": "nope-nope"}
    wrong = await gateway.call("GET", f"/webhooks/cloud/{cloud_pair.b_name}", params=query)
    unknown = await gateway.call("GET", "/webhooks/cloud/nobody__support__000000", params=query)
    assert (403, wrong[1]) == unknown
    assert 403 == wrong[0]


# ---- Only ingress-api publishes provider.callback ----------------------------------------


async def _dead_letters(gateway: Gateway) -> list[tuple[bytes, str]]:
    """Every dead-lettered provider-sender event, left in its queue (returned unacked)."""
    found = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        dead = await channel.get_queue(f"{gateway.namespace}.provider-sender.dead")
        while (message := await dead.get(no_ack=False, fail=False)) is not None:
            found.append((message.body, str((message.headers or {}).get("x-lanegate-reason"))))
    return found


def callback_event(pair: CloudPair, status: str, *, seal: str | None = None) -> ProviderCallback:
    body = cloud_body({"statuses": [status_item(pair.wamid, status)]}, pair.a_number)
    event = ProviderCallback(
        tenantId=pair.a_tenant,
        instanceName=pair.a_name,
        provider="cloud_api",
        body=body.decode(),
    )
    if seal is None:
        key = Keyring(SECRET_KEY).derived_keys(CALLBACK_SEAL_LABEL)[0]
        seal = event_seal(event.sealed_content(), key)
    return event.model_copy(update={"seal": seal})


async def test_provider_callback_not_published_by_ingress_is_dead_lettered(
    gateway: Gateway, cloud_pair: CloudPair, receiver: Receiver
) -> None:
    before = await stored_message(gateway, cloud_pair.message_id)
    genuine = callback_event(cloud_pair, "failed")
    forged = [
        genuine.model_copy(update={"seal": ""}),
        genuine.model_copy(update={"seal": "0" * 64}),
        # A seal made for other content does not carry over to this one.
        genuine.model_copy(update={"body": genuine.body.replace("Forged", "Other")}),
        genuine.model_copy(update={"tenantId": cloud_pair.a_tenant + "x"}),
    ]
    broker = Broker(AMQP_URL, gateway.namespace)
    await broker.connect()
    try:
        started = await handled(gateway)
        for event in forged:
            await broker.publish(event)
        await settled(gateway, started, len(forged))
        assert before == await stored_message(gateway, cloud_pair.message_id)
        reasons = {
            reason
            for body, reason in await _dead_letters(gateway)
            if any(e.id.encode() in body for e in forged)
        }
        assert {"provider.callback not sealed by ingress-api"} == reasons
        # Sealed with the stack's key, the same receipt goes through: the check is the seal.
        await broker.publish(callback_event(cloud_pair, "read"))
    finally:
        await broker.close()
    await receiver.wait_for(event_named("message.status", id=cloud_pair.message_id, status="read"))
    assert [] == receiver.matching(
        event_named("message.status", id=cloud_pair.message_id, status="failed")
    )


async def test_sealed_but_malformed_callback_is_dead_lettered_not_applied(
    gateway: Gateway, cloud_pair: CloudPair
) -> None:
    before = await stored_message(gateway, cloud_pair.message_id)
    event = callback_event(cloud_pair, "failed", seal="")
    event = event.model_copy(
        update={"body": event.body.replace(json.dumps(cloud_pair.wamid), json.dumps(OPERATOR))}
    )
    key = Keyring(SECRET_KEY).derived_keys(CALLBACK_SEAL_LABEL)[-1]
    event = event.model_copy(update={"seal": event_seal(event.sealed_content(), key)})
    broker = Broker(AMQP_URL, gateway.namespace)
    await broker.connect()
    try:
        started = await handled(gateway)
        await broker.publish(event)
        await settled(gateway, started, 1)
    finally:
        await broker.close()
    assert before == await stored_message(gateway, cloud_pair.message_id)
    reasons = [r for body, r in await _dead_letters(gateway) if event.id.encode() in body]
    assert 1 == len(reasons) and reasons[0].startswith("malformed cloud_api callback")
