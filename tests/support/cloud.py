"""Registering `cloud_api` instances on the Meta simulator's numbers."""

from typing import Any

from tests.simulators.meta import MetaSimulator, Number
from tests.support.gateway import FAST_LANES, Gateway
from tests.support.receiver import Receiver

VERIFY_TOKEN = "verify-me-please"


def cloud_config(number: Number, meta: MetaSimulator, **changes: str) -> dict[str, Any]:
    """The number's `providerConfig` as Meta issued it, with `changes` applied."""
    return {
        "phoneNumberId": number.phone_number_id,
        "wabaId": number.waba_id,
        "accessToken": number.access_token,
        "appSecret": number.app_secret,
        "verifyToken": VERIFY_TOKEN,
        "baseUrl": meta.url,
    } | changes


async def create_cloud(
    gateway: Gateway,
    key: str,
    name: str,
    receiver: Receiver,
    provider_config: dict[str, Any],
    **settings: Any,
) -> dict[str, Any]:
    """Create the instance (fast lanes unless `settings` say otherwise); its 201 answer."""
    status, body = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": name,
            "webhookUrl": receiver.url(),
            "webhookSecret": "s3cret-s3cret-s3cret",
            "provider": "cloud_api",
            "lanes": FAST_LANES,
            "providerConfig": provider_config,
        }
        | settings,
    )
    assert 201 == status, body
    return dict(body)
