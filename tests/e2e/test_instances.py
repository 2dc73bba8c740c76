"""Instance endpoints through HTTP against the running services."""

import pytest

from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def test_patch_changes_only_the_fields_given(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, body = await gateway.call(
        "PATCH",
        f"/instance/{name}",
        key=key,
        json={"displayName": "Support", "lanes": {"bulk": {"perDay": 150}}},
    )

    assert (200, name) == (status, body["instanceName"])
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.instances.find_one({"_id": name})
    assert stored is not None
    assert "Support" == stored["displayName"]
    assert {"perDay": 150, "delayMs": [150, 300]} == stored["lanes"]["bulk"]
    assert {"delayMs": [100, 200]} == stored["lanes"]["normal"]
    assert receiver.url() == stored["webhookUrl"]


@pytest.mark.parametrize(
    "body",
    [
        {"webhookSecret": "short"},
        {"webhookUrl": "ftp://example.com/hook"},
        {"lanes": {"normal": {"delayMs": [5000, 1000]}}},
        {"lanes": {"bulk": {"perHour": 0}}},
        {"state": "open"},
    ],
)
async def test_patch_with_invalid_fields_is_400_and_changes_nothing(
    gateway: Gateway, receiver: Receiver, body: dict[str, object]
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    async with gateway.mongo() as client:
        before = await client.lanegate_test.instances.find_one({"_id": name})

        status, answer = await gateway.call("PATCH", f"/instance/{name}", key=key, json=body)

        assert (400, "Validation error") == (status, answer["error"])
        assert before == await client.lanegate_test.instances.find_one({"_id": name})


async def test_patch_of_another_tenants_instance_is_403(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    _, other_key = await gateway.tenant()
    status, _ = await gateway.call("PATCH", f"/instance/{name}", key=other_key, json={})
    assert 403 == status
