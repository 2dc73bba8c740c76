"""Linking a number through provider-sender's RPC: QR code, pairing code, timeouts."""

import base64

import pytest

from lanegate.providers.sandbox import PAIRING_ALPHABET
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_qr_code_is_a_png_data_url(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await gateway.call("GET", f"/instance/{name}/qr", key=key)
    assert 200 == status, body
    prefix, _, data = body["qrcode"].partition(",")
    assert "data:image/png;base64" == prefix
    assert PNG_SIGNATURE == base64.b64decode(data)[:8]


async def test_pairing_code_has_eight_whatsapp_characters(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await gateway.call(
        "POST", f"/instance/{name}/pairing-code", key=key, json={"phoneNumber": "5491112345678"}
    )
    assert 200 == status, body
    code = body["pairingCode"]
    assert 8 == len(code) and set(code) <= set(PAIRING_ALPHABET)


async def test_pairing_code_needs_a_valid_phone_number(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await gateway.call(
        "POST", f"/instance/{name}/pairing-code", key=key, json={"phoneNumber": "+54 11"}
    )
    assert (400, ["phoneNumber"]) == (status, body["issues"][0]["path"])


async def test_another_tenants_qr_code_is_forbidden(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    _, other_key = await gateway.tenant()
    status, _ = await gateway.call("GET", f"/instance/{name}/qr", key=other_key)
    assert 403 == status


async def test_logout_closes_the_session(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    status, body = await gateway.call("POST", f"/instance/{name}/logout", key=key)
    assert (200, "close") == (status, body["state"])
    _, stored = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert "close" == stored["state"]


async def test_session_request_times_out_with_504_when_provider_sender_is_down(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    gateway.stack.stop("provider_sender")
    try:
        status, body = await gateway.call("GET", f"/instance/{name}/qr", key=key)
    finally:
        gateway.stack.start("provider_sender")
    assert (504, "PROVIDER_TIMEOUT") == (status, body["code"])
