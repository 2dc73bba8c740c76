"""Scoped keys: what links a phone to an instance needs `instances:write`."""

import pytest

from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def _scoped_key(gateway: Gateway, tenant_id: str, scopes: list[str]) -> str:
    status, created = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/keys",
        headers={"apikey": gateway.admin_key},
        json={"name": "scoped", "scopes": scopes},
    )
    assert 201 == status, created
    return str(created["apiKey"])


async def test_the_qr_code_needs_instances_write(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    reader = await _scoped_key(gateway, tenant_id, ["instances:read"])
    writer = await _scoped_key(gateway, tenant_id, ["instances:write"])

    status, body = await gateway.call("GET", f"/instance/{name}/qr", key=reader)
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])
    status, body = await gateway.call(
        "POST", f"/instance/{name}/pairing-code", key=reader, json={"phoneNumber": "5491112345678"}
    )
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])

    status, body = await gateway.call("GET", f"/instance/{name}/qr", key=writer)
    assert 200 == status, body
    assert body["qrcode"].startswith("data:image/png;base64,")
