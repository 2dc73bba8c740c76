"""Tenant keys limited to some scopes, made through the operator API."""

from tests.support.gateway import Gateway


async def scoped_key(gateway: Gateway, tenant_id: str, *scopes: str) -> str:
    """A new key of the tenant with only these scopes."""
    status, created = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/keys",
        headers={"apikey": gateway.admin_key},
        json={"name": " ".join(scopes), "scopes": list(scopes)},
    )
    assert 201 == status, created
    return str(created["apiKey"])
