"""The sandbox's simulated failures and per-instance receipt delays."""

import json

import pytest

from tests.support.gateway import Gateway
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

FAILING = "5491199990000"


async def sandbox_instance(
    gateway: Gateway, receiver: Receiver, config: dict[str, object]
) -> tuple[str, str]:
    """A tenant with an open sandbox instance whose `providerConfig` is `config`."""
    _, key, name = await gateway.tenant_with_instance(
        receiver.url(), fields={"providerConfig": config}
    )
    return name, key


async def send(gateway: Gateway, key: str, name: str, to: str) -> str:
    status, body = await gateway.call(
        "POST", "/message/text", key=key, json={"instanceName": name, "to": to, "text": "Hi"}
    )
    assert 202 == status, body
    return str(body["id"])


async def test_sends_to_a_failing_number_fail_as_undeliverable(
    gateway: Gateway, receiver: Receiver
) -> None:
    name, key = await sandbox_instance(gateway, receiver, {"failNumbers": [FAILING]})
    message_id = await send(gateway, key, name, FAILING)
    failed = await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))
    assert "undeliverable" == json.loads(failed[0].body)["data"]["error"]["code"]


async def test_receipt_delays_can_be_set_per_instance(gateway: Gateway, receiver: Receiver) -> None:
    name, key = await sandbox_instance(gateway, receiver, {"deliveredAfterMs": 0, "readAfterMs": 0})
    message_id = await send(gateway, key, name, "5491112345678")
    await receiver.wait_for(event_named("message.status", id=message_id, status="read"))


async def test_a_missing_provider_config_field_is_a_400(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    status, body = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": f"{tenant_id}__support__main",
            "webhookUrl": receiver.url(),
            "webhookSecret": "s3cret-s3cret-s3cret",
            "provider": "cloud_api",
            "providerConfig": {"phoneNumberId": "123"},
        },
    )
    assert 400 == status
    assert ["providerConfig", "wabaId"] in [issue["path"] for issue in body["issues"]]


async def test_a_send_whose_answer_timed_out_is_not_sent_again(
    gateway: Gateway, receiver: Receiver
) -> None:
    name, key = await sandbox_instance(gateway, receiver, {})
    status, body = await gateway.call(
        "POST", f"/sandbox/{name}/fault", key=key, json={"kind": "timeout", "seconds": 30}
    )
    assert 202 == status, body
    message_id = await send(gateway, key, name, "5491112345678")

    # The phone got the first attempt; the retry asks it instead of sending again.
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    async with gateway.mongo() as client:
        record = await client.lanegate_test.sandbox_outbox.find_one({"_id": message_id})
    assert record is not None and 1 == record["received"]


async def test_a_sandbox_outage_is_a_retryable_error_until_it_ends(
    gateway: Gateway, receiver: Receiver
) -> None:
    name, key = await sandbox_instance(gateway, receiver, {})
    status, body = await gateway.call(
        "POST", f"/sandbox/{name}/fault", key=key, json={"kind": "error", "seconds": 60}
    )
    assert 202 == status, body
    message_id = await send(gateway, key, name, "5491112345678")

    # The e2e stack gives up after 3 attempts: the outage outlasts them.
    failed = await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))
    error = json.loads(failed[0].body)["data"]["error"]
    assert "sandbox_unavailable" == error["code"]
    assert error["message"].startswith("Gave up after 3 attempts")
