"""The cloud_api provider end to end, against the Meta Graph API simulator."""

import json
import uuid
from typing import Any

import pytest

from tests.simulators.meta import MetaSimulator, Number
from tests.support.cloud import VERIFY_TOKEN, cloud_config, create_cloud
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

CONTACT = "5491187654321"


async def cloud_instance(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> tuple[str, str, Number]:
    """A tenant with a connected cloud_api instance on a fresh simulated number."""
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__support__{uuid.uuid4().hex[:6]}"
    number = meta.add_number(f"{gateway.api}/webhooks/cloud/{name}")
    await create_cloud(gateway, key, name, receiver, cloud_config(number, meta))
    status, body = await gateway.call("POST", f"/instance/{name}/connect", key=key)
    assert (200, "open") == (status, body["state"]), body

    async def first_sync_done() -> bool:
        # Opening syncs the number's templates: a test's own sync comes after it.
        _, status = await gateway.call("GET", f"/instance/{name}/status", key=key)
        return status["templateSync"] is not None

    await eventually(first_sync_done)
    return name, key, number


async def contact_writes(meta: MetaSimulator, number: Number, receiver: Receiver) -> None:
    """CONTACT writes to the number, opening the 24-hour window."""
    assert 200 == await meta.inbound(number, CONTACT, {"type": "text", "text": {"body": "Hi"}})
    await receiver.wait_for(event_named("message.received", **{"from": CONTACT}))


async def send_text(gateway: Gateway, key: str, name: str) -> str:
    status, body = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": CONTACT, "text": "{Hello|Hi} there", "lane": "urgent"},
    )
    assert 202 == status, body
    return str(body["id"])


async def message(gateway: Gateway, key: str, message_id: str) -> dict[str, Any]:
    _, body = await gateway.call("GET", f"/message/{message_id}", key=key)
    return dict(body)


async def test_connect_opens_the_instance_with_metas_number(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    _, status = await gateway.call("GET", f"/instance/{name}/status", key=key)
    digits = "".join(c for c in number.display_phone_number if c.isdigit())
    assert ("open", digits) == (status["state"], status["phoneNumber"])


async def test_provider_secrets_are_never_returned(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    for path in (f"/instance/{name}/status", f"/instance/{name}/session"):
        _, body = await gateway.call("GET", path, key=key)
        assert number.access_token not in json.dumps(body)
        assert number.app_secret not in json.dumps(body)


async def test_handshake_echoes_the_challenge_only_for_the_verify_token(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, _, _ = await cloud_instance(gateway, meta, receiver)
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    good, _ = await gateway.call(
        "GET",
        f"/webhooks/cloud/{name}",
        params=query | {"hub.verify_token": VERIFY_TOKEN},
    )
    bad, _ = await gateway.call(
        "GET", f"/webhooks/cloud/{name}", params=query | {"hub.verify_token": "nope-nope"}
    )
    assert (200, 403) == (good, bad)


async def test_text_goes_to_meta_and_its_statuses_reach_the_tenant(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    message_id = await send_text(gateway, key, name)
    for state in ("sent", "delivered", "read"):
        await receiver.wait_for(event_named("message.status", id=message_id, status=state))
    body = next(s for s in meta.sent if s.get("biz_opaque_callback_data") == message_id)
    assert ("text", CONTACT) == (body["type"], body["to"])
    assert body["text"]["body"] in ("Hello there", "Hi there")
    assert [] == [found for sent, found in meta.invalid if sent.get("to") == CONTACT]


async def test_inbound_message_reaches_the_tenant_with_name_and_text(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    _, _, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    received = await receiver.wait_for(event_named("message.received", **{"from": CONTACT}))
    data = json.loads(received[0].body)["data"]
    assert ("Ana", "conversation", "Hi") == (data["pushName"], data["messageType"], data["text"])


async def test_inbound_location_and_reaction_keep_their_details(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    _, _, number = await cloud_instance(gateway, meta, receiver)
    place = {"latitude": -34.6037, "longitude": -58.3816, "name": "Obelisco"}
    await meta.inbound(number, CONTACT, {"type": "location", "location": place})
    reaction = {"message_id": "wamid.X", "emoji": "👍"}
    await meta.inbound(number, CONTACT, {"type": "reaction", "reaction": reaction})
    located = await receiver.wait_for(
        event_named("message.received", messageType="locationMessage")
    )
    reacted = await receiver.wait_for(
        event_named("message.received", messageType="reactionMessage")
    )
    assert place == json.loads(located[0].body)["data"]["content"]
    assert "👍" == json.loads(reacted[0].body)["data"]["text"]


async def test_free_form_text_outside_the_window_is_refused_with_a_template_hint(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await cloud_instance(gateway, meta, receiver)
    status, body = await gateway.call(
        "POST", "/message/text", key=key, json={"instanceName": name, "to": CONTACT, "text": "Hi"}
    )
    assert (422, "UNPROCESSABLE") == (status, body["code"])
    assert "template" in body["error"]


async def test_forged_callback_is_rejected_and_nothing_is_processed(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    forged = await meta.inbound(
        number, "5491100000001", {"type": "text", "text": {"body": "x"}}, secret="not-the-secret"
    )
    assert 401 == forged
    await contact_writes(meta, number, receiver)  # a genuine callback after the forged one
    assert [] == receiver.matching(event_named("message.received", **{"from": "5491100000001"}))
    status, _ = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491100000001", "text": "Hi"},
    )
    assert 422 == status  # the forged message opened no window either


@pytest.mark.parametrize("code", [131047, 131026, 131051, 132000, 132001])
async def test_permanent_errors_fail_the_message(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver, code: int
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(code)
    message_id = await send_text(gateway, key, name)
    failed = await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))
    error = json.loads(failed[0].body)["data"]["error"]
    assert str(code) == error["code"]
    assert ("failed", str(code)) == (
        (await message(gateway, key, message_id))["status"],
        (await message(gateway, key, message_id))["error"]["code"],
    )


async def test_window_closed_error_tells_the_tenant_to_send_a_template(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(131047)
    message_id = await send_text(gateway, key, name)
    failed = await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))
    assert "template" in json.loads(failed[0].body)["data"]["error"]["message"]


@pytest.mark.parametrize(
    ("code", "http_status"),
    [(130429, 400), (131056, 400), (1, 400), (2, 503), (131000, 500), (999999, 502)],
)
async def test_transient_errors_are_retried_until_the_send_succeeds(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver, code: int, http_status: int
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(code, http_status=http_status)
    message_id = await send_text(gateway, key, name)
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    assert 1 == len([s for s in meta.sent if s.get("biz_opaque_callback_data") == message_id])


async def test_a_send_that_times_out_is_retried_and_goes_once(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.stall_next(4)  # longer than the stack's LANEGATE_PROVIDER_TIMEOUT_SECONDS (3)
    message_id = await send_text(gateway, key, name)
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"), timeout=30)
    assert 1 == len([s for s in meta.sent if s.get("biz_opaque_callback_data") == message_id])


async def test_throughput_error_backs_off_the_whole_number(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(130429)
    message_id = await send_text(gateway, key, name)
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    async with gateway.mongo() as client:
        instance = await client.lanegate_test.instances.find_one({"_id": name})
    assert instance is not None and instance.get("throttledUntil") is not None


async def test_retries_are_bounded_then_the_message_fails(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    for _ in range(3):  # LANEGATE_PROVIDER_MAX_ATTEMPTS in the e2e stack
        meta.fail_next(131000, http_status=500)
    message_id = await send_text(gateway, key, name)
    failed = await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))
    assert "Gave up after 3 attempts" in json.loads(failed[0].body)["data"]["error"]["message"]


@pytest.mark.parametrize("code", [131048, 131049, 368, 131031])
async def test_ban_risk_errors_pause_the_instance_and_keep_the_message(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver, code: int
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(code)
    message_id = await send_text(gateway, key, name)
    paused = await receiver.wait_for(event_named("instance.paused"))
    data = json.loads(paused[0].body)["data"]
    assert data["reason"].startswith(str(code))
    assert data["until"] is not None
    await eventually(
        lambda: _stored_status_is(gateway, message_id, "deferred"), timeout=10, every=0.1
    )
    assert "pending" == (await message(gateway, key, message_id))["status"]


async def _stored_status_is(gateway: Gateway, message_id: str, status: str) -> bool:
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.messages.find_one({"_id": message_id})
    return stored is not None and stored["status"] == status


async def test_a_failed_status_callback_carries_metas_errors_to_the_tenant(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(131026, asynchronous=True)
    message_id = await send_text(gateway, key, name)
    failed = await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))
    error = json.loads(failed[0].body)["data"]["error"]
    assert ("131026", 131026) == (error["code"], error["errors"][0]["code"])


async def test_a_failed_status_with_a_ban_risk_code_pauses_the_instance(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(131048, asynchronous=True)
    await send_text(gateway, key, name)
    paused = await receiver.wait_for(event_named("instance.paused"))
    assert "spam_rate_limit" == json.loads(paused[0].body)["data"]["reason"]


async def test_qr_code_is_refused_for_a_cloud_api_number(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await cloud_instance(gateway, meta, receiver)
    status, body = await gateway.call("GET", f"/instance/{name}/qr", key=key)
    assert 422 == status, body


async def test_a_provider_error_on_a_session_request_is_a_502(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    number.access_token = "EAAG-revoked"  # Meta now refuses the stored token
    status, body = await gateway.call("GET", f"/instance/{name}/session", key=key)
    assert (502, "PROVIDER_ERROR") == (status, body["code"])
