"""Settings a tenant wrote can be read back: status, /instances and /instances/{clientId} show
each instance's own settings as stored (defaults filled in), never a secret."""

import json
import uuid
from typing import Any

import pytest

from lanegate.secrets import Keyring
from tests.conftest import SECRET_KEY
from tests.simulators.meta import MetaSimulator
from tests.simulators.waha import WahaSimulator
from tests.support.cloud import VERIFY_TOKEN, cloud_config, create_cloud
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def every_view(gateway: Gateway, key: str, name: str) -> list[dict[str, Any]]:
    """The instance as status, /instances and /instances/{clientId} show it."""
    client = name.split("__")[1]
    _, status = await gateway.call("GET", f"/instance/{name}/status", key=key)
    _, listed = await gateway.call("GET", "/instances", key=key)
    _, of_client = await gateway.call("GET", f"/instances/{client}", key=key)
    return [
        status,
        next(i for i in listed if i["instanceName"] == name),
        next(i for i in of_client if i["instanceName"] == name),
    ]


async def test_every_setting_written_reads_back_in_every_view(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__shop__{uuid.uuid4().hex[:6]}"
    number = meta.add_number(f"{gateway.api}/webhooks/cloud/{name}")
    await create_cloud(
        gateway,
        key,
        name,
        receiver,
        cloud_config(number, meta),
        displayName="Shop front",
        isPrimary=True,
        lanes={"bulk": {"perDay": 150}},
        timezone="America/Sao_Paulo",
        warmup={"startPerDay": 20, "growthPercent": 25},
        throughput={"perSecond": 20},
    )
    status, _ = await gateway.call(
        "PATCH",
        f"/instance/{name}",
        key=key,
        json={"webhookEvents": ["message.status", "instance.paused"], "webhookEnabled": False},
    )
    assert 200 == status

    for shown in await every_view(gateway, key, name):
        assert {
            "urgent": {"delayMs": [1000, 2000], "perHour": None, "perDay": None},
            "normal": {"delayMs": [3000, 8000], "perHour": 80, "perDay": 500},
            "bulk": {"delayMs": [8000, 15000], "perHour": 30, "perDay": 150},
        } == shown["lanes"]
        assert {
            "provider": "cloud_api",
            "displayName": "Shop front",
            "isPrimary": True,
            "timezone": "America/Sao_Paulo",
            "warmup": {"startPerDay": 20, "growthPercent": 25.0},
            "throughput": {"perSecond": 20, "recipientGapMs": 6000},
            "webhookUrl": receiver.url(),
            "webhookEvents": ["instance.paused", "message.status"],
            "webhookEnabled": False,
            "webhookDisabledReason": "disabled by the tenant",
            "pause": None,
            "lastError": None,
        } == {k: shown[k] for k in (
            "provider", "displayName", "isPrimary", "timezone", "warmup", "throughput",
            "webhookUrl", "webhookEvents", "webhookEnabled", "webhookDisabledReason", "pause",
            "lastError",
        )}  # fmt: skip
        assert shown["webhookDisabledAt"].endswith("Z")
        assert "templateSync" in shown


async def test_a_sandbox_instance_shows_the_defaults(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__support__plain"
    status, _ = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={"instanceName": name, "webhookUrl": receiver.url(), "webhookSecret": "s" * 16},
    )
    assert 201 == status

    for shown in await every_view(gateway, key, name):
        assert ("sandbox", "UTC", None, None) == (
            shown["provider"],
            shown["timezone"],
            shown["warmup"],
            shown["throughput"],
        )
        assert (True, None, None, None) == (
            shown["webhookEnabled"],
            shown["webhookEvents"],
            shown["templateSync"],
            shown["pause"],
        )
        assert [1000, 2000] == shown["lanes"]["urgent"]["delayMs"]
        assert (True, None) == ("defaultCountry" in shown, shown.get("defaultCountry"))


async def test_no_secret_of_a_cloud_api_or_waha_instance_is_ever_shown(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    cloud = f"{tenant_id}__support__cloud"
    number = meta.add_number(f"{gateway.api}/webhooks/cloud/{cloud}")
    await create_cloud(gateway, key, cloud, receiver, cloud_config(number, meta))
    phone = f"{tenant_id}__support__waha"
    status, _ = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": phone,
            "webhookUrl": receiver.url(),
            "webhookSecret": "waha-hook-s3cret-s3cret",
            "provider": "waha",
            "providerConfig": {"baseUrl": waha.url, "apiKey": waha.api_key, "session": "s1"},
        },
    )
    assert 201 == status
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.instances.find_one({"_id": phone})
    assert stored is not None
    hmac_key = Keyring(SECRET_KEY).open_config(stored["providerConfig"])["hmacKey"]
    secrets = [
        number.access_token,
        number.app_secret,
        VERIFY_TOKEN,
        "s3cret-s3cret-s3cret",
        waha.api_key,
        hmac_key,
        "waha-hook-s3cret-s3cret",
    ]

    shown = [*await every_view(gateway, key, cloud), *await every_view(gateway, key, phone)]
    for name in (cloud, phone):
        _, patched = await gateway.call(
            "PATCH", f"/instance/{name}", key=key, json={"displayName": "x"}
        )
        shown.append(patched)

    text = json.dumps(shown)
    assert [] == [secret for secret in secrets if secret in text]
    assert 8 == len(shown)
