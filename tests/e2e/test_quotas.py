"""Per-tenant quotas: instances (403) and messages per UTC day (429 until midnight), counted in
the store, all or nothing for bulk."""

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

TO = "5491112345678"


async def _tenant(gateway: Gateway, **quotas: int) -> tuple[str, str]:
    tenant_id = f"q{datetime.now(UTC).strftime('%H%M%S%f')}"
    status, body = await gateway.call(
        "POST",
        "/admin/tenants",
        json={"id": tenant_id, "name": tenant_id, **quotas},
        headers={"apikey": gateway.admin_key},
    )
    assert 201 == status, body
    return tenant_id, body["apiKey"]


async def _messages(gateway: Gateway, tenant_id: str) -> int:
    async with gateway.mongo() as client:
        return await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})


async def test_instance_quota_gives_403_and_the_operator_can_raise_it(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, maxInstances=1)
    await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = {
        "instanceName": f"{tenant_id}__support__second",
        "webhookUrl": receiver.url(),
        "webhookSecret": "s" * 20,
    }
    status, answer = await gateway.call("POST", "/instance/create", key=key, json=body)
    assert (403, "QUOTA_EXCEEDED") == (status, answer["code"])
    assert "1 instances" in answer["error"]
    async with gateway.mongo() as client:
        held = await client.lanegate_test.instances.count_documents({"tenantId": tenant_id})
    assert 1 == held
    status, view = await gateway.call(
        "PATCH",
        f"/admin/tenants/{tenant_id}",
        json={"maxInstances": 2},
        headers={"apikey": gateway.admin_key},
    )
    assert (200, 2) == (status, view["maxInstances"])
    status, _ = await gateway.call("POST", "/instance/create", key=key, json=body)
    assert 201 == status


async def test_daily_message_quota_covers_every_send_and_bulk_is_all_or_nothing(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, maxMessagesPerDay=3)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    text = {"instanceName": name, "to": TO, "text": "hi"}

    async def send(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return await gateway.call("POST", path, key=key, json=body)

    assert 202 == (await send("/message/text", {**text, "externalId": "once"}))[0]
    # A repeat of an accepted externalId is no new message and costs nothing.
    assert 200 == (await send("/message/text", {**text, "externalId": "once"}))[0]
    routed = {"tenantId": tenant_id, "clientId": "support", "to": TO, "text": "hi", "type": "text"}
    assert 202 == (await send("/message/send", routed))[0]
    status, answer = await send("/message/bulk", {"messages": [text, text]})
    assert (429, "QUOTA_EXCEEDED") == (status, answer["code"])
    assert 2 == await _messages(gateway, tenant_id)
    assert 202 == (await send("/message/bulk", {"messages": [text]}))[0]
    status, answer = await send("/message/text", text)
    assert (429, "QUOTA_EXCEEDED") == (status, answer["code"])
    assert 3 == await _messages(gateway, tenant_id)


async def test_quota_answer_says_when_the_day_rolls_over(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, maxMessagesPerDay=0)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gateway.api + "/message/text",
            json={"instanceName": name, "to": TO, "text": "hi"},
            headers={"apikey": key},
        ) as response,
    ):
        answer = await response.json()
        wait = int(response.headers["Retry-After"])
    assert (429, "QUOTA_EXCEEDED") == (response.status, answer["code"])
    assert abs((midnight - now).total_seconds() - wait) < 30
    assert midnight.isoformat() in answer["error"]
    assert 0 == await _messages(gateway, tenant_id)
