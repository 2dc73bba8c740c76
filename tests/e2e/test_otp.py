"""One-time codes through the whole gateway on the sandbox phone: send, verify, limits, masking."""

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

PHONE = "5491155550001"


async def send_otp(gateway: Gateway, key: str, name: str, to: str, **fields: Any) -> dict[str, Any]:
    status, body = await gateway.call(
        "POST", "/otp/send", key=key, json={"instanceName": name, "to": to} | fields
    )
    assert 201 == status, body
    return dict(body)


async def phone_text(gateway: Gateway, message_id: str) -> str:
    """What the sandbox phone received for the message (the user's screen)."""
    async with gateway.mongo() as client:

        async def arrived() -> bool:
            found = await client.lanegate_test.sandbox_outbox.find_one({"_id": message_id})
            return found is not None

        await eventually(arrived)
        record = await client.lanegate_test.sandbox_outbox.find_one({"_id": message_id})
        assert record is not None
        return str(record["text"])


async def code_on_phone(
    gateway: Gateway, receiver: Receiver, **fields: Any
) -> tuple[str, str, dict[str, Any], str]:
    """A new tenant's key and instance, an OTP sent from it, and the code the phone shows."""
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    sent = await send_otp(gateway, key, name, PHONE, **fields)
    return key, name, sent, code_in(await phone_text(gateway, sent["messageId"]))


def code_in(text: str) -> str:
    found = re.search(r"\d{4,10}", text)
    assert found is not None, text
    return found.group()


async def verify(gateway: Gateway, key: str, **fields: Any) -> tuple[int, Any]:
    return await gateway.call("POST", "/otp/verify", key=key, json=fields)


def wrong(code: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in code)


async def test_the_code_on_the_phone_verifies_once(gateway: Gateway, receiver: Receiver) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    sent = await send_otp(gateway, key, name, PHONE, length=8, text="Code: {{code}} (ok)")
    assert ("pending", 5, 3) == (sent["status"], sent["attemptsLeft"], sent["resendsLeft"])
    text = await phone_text(gateway, sent["messageId"])
    code = code_in(text)
    assert f"Code: {code} (ok)" == text
    assert 8 == len(code)

    assert (200, {"valid": True, "status": "verified"}) == await verify(
        gateway, key, id=sent["id"], code=code
    )
    status, again = await verify(gateway, key, id=sent["id"], code=code)
    assert (422, False, "verified") == (status, again["valid"], again["status"])
    status, read = await gateway.call("GET", f"/otp/{sent['id']}", key=key)
    assert (200, "verified", [sent["messageId"]]) == (status, read["status"], read["messageIds"])
    assert read["verifiedAt"] is not None


async def test_the_carrying_message_shows_the_mask_and_its_receipts_show_on_the_otp(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, sent, code = await code_on_phone(gateway, receiver)

    async def read_receipt() -> bool:
        _, body = await gateway.call("GET", f"/otp/{sent['id']}", key=key)
        return bool(body["status"] == "read")

    await eventually(read_receipt)
    status, message = await gateway.call("GET", f"/message/{sent['messageId']}", key=key)
    assert 200 == status
    assert ("urgent", 10) == (message["lane"], message["priority"])
    assert "******" in message["text"] and "******" in message["sentText"]
    assert code not in str(message)
    _, listing = await gateway.call("GET", f"/messages?instanceName={name}", key=key)
    assert code not in str(listing)


async def test_verify_by_number_checks_its_latest_code(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, _, code = await code_on_phone(gateway, receiver)
    assert 200 == (await verify(gateway, key, instanceName=name, to=PHONE, code=code))[0]


async def test_brute_force_stops_at_five_wrong_codes_and_blocks_the_number(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, sent, code = await code_on_phone(gateway, receiver)
    other = await send_otp(gateway, key, name, PHONE)
    other_code = code_in(await phone_text(gateway, other["messageId"]))
    answers = [await verify(gateway, key, id=sent["id"], code=wrong(code)) for _ in range(5)]
    assert [(422, "pending", n) for n in (4, 3, 2, 1)] + [(422, "blocked", 0)] == [
        (status, body["status"], body["attemptsLeft"]) for status, body in answers
    ]
    status, body = await verify(gateway, key, id=sent["id"], code=code)
    assert (422, False, "blocked") == (status, body["valid"], body["status"])
    # The number's other live code is blocked with it.
    status, body = await verify(gateway, key, id=other["id"], code=other_code)
    assert (422, False, "blocked") == (status, body["valid"], body["status"])

    # A new code for the number does not lift the block.
    status, refused = await gateway.call(
        "POST", "/otp/send", key=key, json={"instanceName": name, "to": PHONE}
    )
    assert 429 == status, refused
    _, read = await gateway.call("GET", f"/otp/{sent['id']}", key=key)
    assert "blocked" == read["status"]


async def test_two_verifies_of_one_code_at_once_let_one_through(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, _, sent, code = await code_on_phone(gateway, receiver)
    answers = await asyncio.gather(
        *(verify(gateway, key, id=sent["id"], code=code) for _ in range(8))
    )
    assert [200] + [422] * 7 == sorted(status for status, _ in answers)


async def test_a_resend_replaces_the_code_after_the_gap_and_not_before(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, _, sent, first = await code_on_phone(gateway, receiver)
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.otp_codes.find_one({"_id": sent["id"]})
    assert stored is not None
    status, early = await gateway.call("POST", f"/otp/{sent['id']}/resend", key=key)
    assert 429 == status, early
    # 30 seconds pass: the first send is moved back instead of waiting for them.
    async with gateway.mongo() as client:
        await client.lanegate_test.otp_codes.update_one(
            {"_id": sent["id"]}, {"$set": {"sends": [stored["sends"][0] - timedelta(seconds=31)]}}
        )
    status, resent = await gateway.call("POST", f"/otp/{sent['id']}/resend", key=key)
    assert (201, 2) == (status, resent["resendsLeft"]), resent
    second = code_in(await phone_text(gateway, resent["messageId"]))
    if second != first:
        status, old = await verify(gateway, key, id=sent["id"], code=first)
        assert (422, "pending") == (status, old["status"])
    assert 200 == (await verify(gateway, key, id=sent["id"], code=second))[0]
    _, read = await gateway.call("GET", f"/otp/{sent['id']}", key=key)
    assert [sent["messageId"], resent["messageId"]] == read["messageIds"]


async def test_a_sixth_send_to_a_number_in_an_hour_is_429_with_retry_after(
    gateway: Gateway, receiver: Receiver
) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    for _ in range(5):
        await send_otp(gateway, key, name, PHONE)
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            gateway.api + "/otp/send",
            json={"instanceName": name, "to": PHONE},
            headers={"apikey": key},
        )
        assert 429 == response.status
        assert 0 < int(response.headers["Retry-After"]) <= 3600
    # Another number is not held back.
    await send_otp(gateway, key, name, "5491155550002")


async def test_sends_to_one_number_at_once_let_only_the_hourly_five_through(
    gateway: Gateway, receiver: Receiver
) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    answers = await asyncio.gather(
        *(
            gateway.call("POST", "/otp/send", key=key, json={"instanceName": name, "to": PHONE})
            for _ in range(9)
        )
    )
    assert [201] * 5 + [429] * 4 == sorted(status for status, _ in answers)


async def test_a_send_refused_for_its_contact_costs_the_number_no_hourly_send(
    gateway: Gateway, receiver: Receiver
) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    _, contact = await gateway.call("POST", "/contacts", key=key, json={"identifier": PHONE})
    path = f"/contacts/{contact['id']}/status"
    assert 200 == (await gateway.call("PATCH", path, key=key, json={"active": False}))[0]
    for _ in range(6):
        status, body = await gateway.call(
            "POST", "/otp/send", key=key, json={"instanceName": name, "to": PHONE}
        )
        assert 422 == status, body
    assert 200 == (await gateway.call("PATCH", path, key=key, json={"active": True}))[0]
    for _ in range(5):
        await send_otp(gateway, key, name, PHONE)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"text": "No placeholder"}, ["text"]),
        ({"text": "Has ****** and {{code}}"}, ["text"]),
        ({"length": 3}, ["length"]),
        ({"length": 11}, ["length"]),
        ({"ttlSeconds": 59}, ["ttlSeconds"]),
        ({"template": {"name": "otp", "language": "en"}}, ["template"]),
    ],
)
async def test_a_send_that_cannot_carry_a_code_is_400_and_stores_nothing(
    gateway: Gateway, receiver: Receiver, fields: dict[str, Any], path: list[str]
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url())
    status, body = await gateway.call(
        "POST", "/otp/send", key=key, json={"instanceName": name, "to": PHONE} | fields
    )
    assert (400, "Validation error") == (status, body["error"])
    assert path == body["issues"][0]["path"][: len(path)]
    async with gateway.mongo() as client:
        db = client.lanegate_test
        assert 0 == await db.otp_codes.count_documents({"tenantId": tenant_id})
        assert 0 == await db.messages.count_documents({"tenantId": tenant_id})


async def test_a_verify_naming_no_code_is_400(gateway: Gateway, receiver: Receiver) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    for body in ({"code": "123456"}, {"id": "x", "code": "12ab"}, {"instanceName": name}):
        status, answer = await verify(gateway, key, **body)
        assert (400, "Validation error") == (status, answer["error"]), body


async def test_another_tenants_otp_reads_as_not_found(gateway: Gateway, receiver: Receiver) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    sent = await send_otp(gateway, key, name, PHONE)
    _, other = await gateway.tenant()
    assert 404 == (await gateway.call("GET", f"/otp/{sent['id']}", key=other))[0]
    assert 404 == (await verify(gateway, other, id=sent["id"], code="123456"))[0]


async def test_a_key_limited_to_otp_read_cannot_send(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, _, name = await gateway.tenant_with_instance(receiver.url())
    status, created = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/keys",
        json={"name": "otp reader", "scopes": ["otp:read"]},
        headers={"apikey": gateway.admin_key},
    )
    assert 201 == status, created
    reader = created["apiKey"]
    status, _ = await gateway.call(
        "POST", "/otp/send", key=reader, json={"instanceName": name, "to": PHONE}
    )
    assert 403 == status
    assert 200 == (await gateway.call("GET", "/otp/templates", key=reader))[0]


async def test_outcomes_reach_the_webhook_as_otp_events(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, sent, code = await code_on_phone(gateway, receiver, externalId="signup-7")
    assert 200 == (await verify(gateway, key, id=sent["id"], code=code))[0]
    [hook] = await receiver.wait_for(event_named("otp.verified", id=sent["id"]))
    body = json.loads(hook.body)
    assert (
        name,
        {"id": sent["id"], "to": PHONE, "status": "verified", "externalId": "signup-7"},
    ) == (
        body["instanceName"],
        body["data"],
    )

    blocked = await send_otp(gateway, key, name, "5491155550003")
    for _ in range(5):
        await verify(gateway, key, id=blocked["id"], code="0000")
    await receiver.wait_for(event_named("otp.blocked", id=blocked["id"]))


async def test_a_code_past_its_expiry_expires_and_is_told_without_being_asked(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, _, sent, code = await code_on_phone(gateway, receiver)
    # Its five minutes pass: the expiry is moved back instead of waiting for them.
    async with gateway.mongo() as client:
        await client.lanegate_test.otp_codes.update_one(
            {"_id": sent["id"]}, {"$set": {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)}}
        )
    await receiver.wait_for(event_named("otp.expired", id=sent["id"]))
    status, body = await verify(gateway, key, id=sent["id"], code=code)
    assert (422, "expired") == (status, body["status"])
    assert 1 == len(receiver.matching(event_named("otp.expired", id=sent["id"])))


async def test_a_code_is_never_in_a_log_line_a_store_field_or_a_webhook(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, sent, code = await code_on_phone(gateway, receiver, length=10)
    await verify(gateway, key, id=sent["id"], code=wrong(code))
    assert 200 == (await verify(gateway, key, id=sent["id"], code=code))[0]
    await receiver.wait_for(event_named("otp.verified", id=sent["id"]))
    await receiver.wait_for(event_named("message.status", id=sent["messageId"], status="read"))
    await gateway.call("GET", f"/otp/{sent['id']}", key=key)
    await gateway.call("GET", f"/message/{sent['messageId']}", key=key)
    await gateway.call("GET", f"/messages?instanceName={name}", key=key)
    status, deliveries = await gateway.call(
        "GET", f"/webhooks/deliveries?instanceName={name}", key=key
    )
    assert 200 == status, deliveries
    assert not _holds(code, json.dumps(deliveries))

    assert [] == [r.path for r in receiver.requests if _holds(code, r.body.decode())]
    async with gateway.mongo() as client:
        db = client.lanegate_test
        for collection in await db.list_collection_names():
            if collection == "sandbox_outbox":  # the phone itself: the code is on its screen
                continue
            async for document in db[collection].find({}):
                assert not _holds(code, repr(document)), collection
    assert [] == _logs_holding(code, gateway.namespace)


def _logs_holding(code: str, namespace: str) -> list[str]:
    """The service and store logs of the run that hold `code`."""
    logs = Path("var/test-logs", namespace).glob("*.log")
    return [log.name for log in logs if _holds(code, log.read_text(errors="replace"))]


def _holds(code: str, text: str) -> bool:
    return re.search(rf"(?<!\d){code}(?!\d)", text) is not None


async def test_openapi_describes_the_otp_routes_and_webhooks(gateway: Gateway) -> None:
    status, spec = await gateway.call("GET", "/openapi.json")
    assert 200 == status
    assert {
        "/otp/send": ["post"],
        "/otp/{id}/resend": ["post"],
        "/otp/verify": ["post"],
        "/otp/{id}": ["get"],
        "/otp/templates": ["get"],
    } == {path: sorted(ops) for path, ops in spec["paths"].items() if path.startswith("/otp")}
    assert {"otp.verified", "otp.blocked", "otp.expired"} <= set(spec["webhooks"])


async def test_a_tenant_never_has_more_live_codes_than_its_plan_allows(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url())
    status, body = await gateway.call(
        "PATCH",
        f"/admin/tenants/{tenant_id}",
        json={"otpMaxLiveCodes": 3},
        headers={"apikey": gateway.admin_key},
    )
    assert 200 == status, body
    numbers = iter(f"54911666{n:05d}" for n in range(100))

    async def send() -> tuple[int, Any]:
        return await gateway.call(
            "POST", "/otp/send", key=key, json={"instanceName": name, "to": next(numbers)}
        )

    # Sends at once: never more than the cap (a crowd may be refused beyond it).
    answers = await asyncio.gather(*(send() for _ in range(6)))
    accepted = sum(status == 201 for status, _ in answers)
    assert accepted <= 3
    for status, body in answers:
        assert status == 201 or (429, "otpMaxLiveCodes") == (status, body["limit"]), body
    for _ in range(3 - accepted):
        status, body = await send()
        assert 201 == status, body
    status, body = await send()
    assert (429, "RATE_LIMITED", "otpMaxLiveCodes") == (status, body["code"], body["limit"])
    _, limits = await gateway.call("GET", "/account/limits", key=key)
    assert {"limit": 3, "used": 3} == limits["otpLiveCodes"]
