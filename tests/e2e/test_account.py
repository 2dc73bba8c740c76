"""A tenant's account, plans and the limits in force: the operator's plans, the tenant's own
overrides winning, and a tenant over a limit told which one."""

import time
import uuid
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import Gateway, eventually
from tests.support.hostile import HostileServer
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

TO = "5491112345678"


async def _early_in_a_minute() -> bool:
    return time.time() % 60 < 40


async def _admin(gateway: Gateway, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await gateway.call(method, path, json=body, headers={"apikey": gateway.admin_key})


async def _plan(gateway: Gateway, **limits: int) -> str:
    plan_id = f"p{uuid.uuid4().hex[:8]}"
    status, body = await _admin(
        gateway, "POST", "/admin/plans", {"id": plan_id, "name": "Starter", **limits}
    )
    assert 201 == status, body
    return plan_id


async def _tenant_on(gateway: Gateway, plan_id: str, **own: int) -> tuple[str, str]:
    tenant_id = f"t{uuid.uuid4().hex[:10]}"
    status, body = await _admin(
        gateway,
        "POST",
        "/admin/tenants",
        {"id": tenant_id, "name": "Acme", "planId": plan_id, **own},
    )
    assert 201 == status, body
    return tenant_id, body["apiKey"]


async def test_account_names_the_plan_and_counts_instances_and_contacts(
    gateway: Gateway, receiver: Receiver
) -> None:
    plan_id = await _plan(gateway, maxInstances=5)
    tenant_id, key = await _tenant_on(gateway, plan_id)
    await gateway.instance(tenant_id, key, receiver.url())
    await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    contact = {"identifier": TO, "name": "A"}
    status, _ = await gateway.call("POST", "/contacts", key=key, json=contact)
    assert 201 == status

    status, account = await gateway.call("GET", "/account", key=key)

    assert 200 == status, account
    assert (tenant_id, "Acme") == (account["id"], account["name"])
    assert {"id": plan_id, "name": "Starter"} == account["plan"]
    assert {"defaultCountry": None, "timezone": "UTC"} == account["settings"]
    counts = account["counts"]
    assert (2, 1) == (counts["instances"], counts["contacts"])
    assert 1 == counts["instancesByState"]["open"]
    assert {"sandbox": 2} == counts["instancesByProvider"]
    assert {"whatsapp": 2} == counts["instancesByChannel"]


async def test_plans_are_listed_and_changed_by_the_operator_only(gateway: Gateway) -> None:
    plan_id = await _plan(gateway, maxMessagesPerDay=10)
    status, body = await _admin(gateway, "POST", "/admin/plans", {"id": plan_id, "name": "x"})
    assert (409, "CONFLICT") == (status, body["code"])
    status, body = await _admin(gateway, "POST", "/admin/plans", {"id": "p-x", "name": ""})
    assert (400, ["name"]) == (status, body["issues"][0]["path"])
    status, body = await _admin(
        gateway, "PATCH", f"/admin/plans/{plan_id}", {"maxMessagesPerDay": None, "maxBulkSize": 5}
    )
    assert 200 == status, body
    assert (None, 5) == (body["maxMessagesPerDay"], body["maxBulkSize"])
    status, listed = await _admin(gateway, "GET", "/admin/plans")
    assert 200 == status
    mine = next(p for p in listed if p["id"] == plan_id)
    assert (None, 5, "Starter") == (mine["maxMessagesPerDay"], mine["maxBulkSize"], mine["name"])
    status, body = await _admin(gateway, "PATCH", "/admin/plans/nope", {"name": "y"})
    assert 404 == status

    _, key = await gateway.tenant()
    status, body = await gateway.call("GET", "/admin/plans", key=key)
    assert 401 == status
    status, body = await _admin(
        gateway, "POST", "/admin/tenants", {"id": "t-noplan", "name": "x", "planId": "missing"}
    )
    assert (400, ["planId"]) == (status, body["issues"][0]["path"])


async def test_limits_come_from_the_plan_and_the_tenants_own_values_win(
    gateway: Gateway, receiver: Receiver
) -> None:
    plan_id = await _plan(gateway, maxInstances=3, maxMessagesPerDay=50, maxBulkSize=2)
    tenant_id, key = await _tenant_on(gateway, plan_id, maxMessagesPerDay=7)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, _ = await gateway.call(
        "POST", "/message/text", key=key, json={"instanceName": name, "to": TO, "text": "hi"}
    )
    assert 202 == status

    status, limits = await gateway.call("GET", "/account/limits", key=key)

    assert 200 == status, limits
    assert {"id": plan_id, "name": "Starter"} == limits["plan"]
    assert {"limit": 3, "used": 1} == limits["instances"]
    assert {"limit": 7, "used": 1} == limits["messagesToday"]
    assert 2 == limits["bulkSize"]["limit"]
    assert limits["requestsPerMinute"]["limit"] is None
    per_key = limits["requestsPerMinutePerKey"]
    assert 600 == per_key["limit"] and per_key["used"] >= 1
    assert limits["attachmentBytes"]["limit"] > 0
    assert limits["otpSendsPerHourPerNumber"]["limit"] > 0

    # The plan's change reaches its tenants; the tenant's own value still wins.
    status, _ = await _admin(
        gateway, "PATCH", f"/admin/plans/{plan_id}", {"maxInstances": 9, "maxMessagesPerDay": 1}
    )
    assert 200 == status
    status, limits = await gateway.call("GET", "/account/limits", key=key)
    assert (9, 7) == (limits["instances"]["limit"], limits["messagesToday"]["limit"])


async def test_over_a_plan_limit_the_answer_names_the_limit(
    gateway: Gateway, receiver: Receiver
) -> None:
    plan_id = await _plan(gateway, maxInstances=1, maxBulkSize=2, maxMessagesPerDay=2)
    tenant_id, key = await _tenant_on(gateway, plan_id)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, body = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": f"{tenant_id}__support__second",
            "webhookUrl": receiver.url(),
            "webhookSecret": "s" * 20,
        },
    )
    assert (403, "QUOTA_EXCEEDED", "maxInstances") == (status, body["code"], body["limit"])

    text = {"instanceName": name, "to": TO, "text": "hi"}
    status, body = await gateway.call(
        "POST", "/message/bulk", key=key, json={"messages": [text] * 3}
    )
    assert (403, "QUOTA_EXCEEDED", "maxBulkSize") == (status, body["code"], body["limit"])
    status, body = await gateway.call(
        "POST", "/message/bulk", key=key, json={"messages": [text] * 2}
    )
    assert 202 == status, body
    status, body = await gateway.call("POST", "/message/text", key=key, json=text)
    assert (429, "QUOTA_EXCEEDED", "maxMessagesPerDay") == (status, body["code"], body["limit"])


async def test_requests_per_minute_count_every_key_of_the_tenant(gateway: Gateway) -> None:
    plan_id = await _plan(gateway, requestsPerMinute=4)
    _, key = await _tenant_on(gateway, plan_id)
    # Counted per minute of the clock: start early in one, so all requests fall in it.
    await eventually(lambda: _early_in_a_minute(), timeout=60, every=0.5)
    status, made = await gateway.call("POST", "/account/keys", key=key, json={"name": "second"})
    assert 201 == status, made
    statuses = []
    for n in range(6):
        status, body = await gateway.call("GET", "/account", key=key if n % 2 else made["apiKey"])
        statuses.append(status)
    assert [200, 200, 200, 429, 429, 429] == statuses
    assert ("RATE_LIMITED", "requestsPerMinute") == (body["code"], body["limit"])


async def test_a_monthly_limit_refuses_sends_past_it_and_shows_what_the_month_used(
    gateway: Gateway, receiver: Receiver
) -> None:
    plan_id = await _plan(gateway)
    # A day of 4: had the refused bulk kept its day's count, the third send would not fit.
    tenant_id, key = await _tenant_on(gateway, plan_id, maxMessagesPerDay=4)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    text = {"instanceName": name, "to": TO, "text": "hi"}
    status, body = await gateway.call(
        "POST", "/message/bulk", key=key, json={"messages": [text] * 2}
    )
    assert 202 == status, body
    # A limit set in the middle of the month holds what the month already sent.
    status, body = await _admin(
        gateway, "PATCH", f"/admin/plans/{plan_id}", {"maxMessagesPerMonth": 3}
    )
    assert 200 == status, body

    # A bulk that does not fit in the month is refused whole; what fits still goes.
    status, body = await gateway.call(
        "POST", "/message/bulk", key=key, json={"messages": [text] * 2}
    )
    assert (429, "QUOTA_EXCEEDED", "maxMessagesPerMonth") == (
        status,
        body["code"],
        body["limit"],
    )
    assert "Monthly message quota of 3" in body["error"]
    status, body = await gateway.call("POST", "/message/text", key=key, json=text)
    assert 202 == status, body
    status, body = await gateway.call("POST", "/message/text", key=key, json=text)
    assert (429, "maxMessagesPerMonth") == (status, body["limit"])

    async def month_counted() -> bool:
        _, limits = await gateway.call("GET", "/account/limits", key=key)
        return bool(limits["messagesThisMonth"] == {"limit": 3, "used": 3})

    await eventually(month_counted, timeout=30, every=0.5)


async def test_a_plan_caps_attachments_and_codes_per_number_below_the_gateway(
    gateway: Gateway, receiver: Receiver
) -> None:
    plan_id = await _plan(gateway, maxAttachmentBytes=2048, otpSendsPerHour=2)
    tenant_id, key = await _tenant_on(gateway, plan_id)
    name = await gateway.instance(tenant_id, key, receiver.url())
    status, limits = await gateway.call("GET", "/account/limits", key=key)
    assert (2048, 2) == (
        limits["attachmentBytes"]["limit"],
        limits["otpSendsPerHourPerNumber"]["limit"],
    )

    form = aiohttp.FormData({"instanceName": name, "to": TO})
    form.add_field("attachments", b"%PDF" + b"\0" * 4096, filename="big.pdf")
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.api + "/message/attachment", data=form, headers={"apikey": key}) as r,
    ):
        status, body = r.status, await r.json()
    assert (413, "PAYLOAD_TOO_LARGE", "maxAttachmentBytes") == (
        status,
        body["code"],
        body["limit"],
    )

    # A file by URL is cut off at the tenant's limit when provider-sender downloads it.
    endless = HostileServer(receiver.url())
    endless.start()
    try:
        status, body = await gateway.call(
            "POST",
            "/message/attachment",
            key=key,
            json={"instanceName": name, "to": TO, "attachmentUrl": endless.url + "/endless/a.pdf"},
        )
        assert 202 == status, body
        await receiver.wait_for(event_named("message.status", id=body["id"], status="failed"))
    finally:
        endless.stop()
    _, message = await gateway.call("GET", f"/message/{body['id']}", key=key)
    assert "larger than 2048 bytes" in message["error"]["message"]

    for _ in range(2):
        status, body = await gateway.call(
            "POST", "/otp/send", key=key, json={"instanceName": name, "to": TO}
        )
        assert 201 == status, body
    status, body = await gateway.call(
        "POST", "/otp/send", key=key, json={"instanceName": name, "to": TO}
    )
    assert (429, "RATE_LIMITED", "otpSendsPerHour") == (status, body["code"], body["limit"])
    assert "At most 2 codes an hour" in body["error"]
