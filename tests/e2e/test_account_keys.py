"""Self-service API keys: shown once, listed by prefix, scopes only within the maker's own,
`keys:write` needed, expired keys 401 KEY_EXPIRED, revoked keys 401."""

from datetime import UTC, datetime, timedelta

import pytest

from lanegate.store import Store
from lanegate.tenants import issue_key
from tests.support.gateway import Gateway, eventually

pytestmark = pytest.mark.e2e


async def test_a_key_is_shown_once_and_listed_by_its_prefix(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()

    status, made = await gateway.call(
        "POST", "/account/keys", key=key, json={"name": "ci", "expiresAt": expires}
    )

    assert 201 == status, made
    assert made["apiKey"].startswith(made["prefix"]) and len(made["prefix"]) >= 8
    assert made["scopes"] is None  # made by a key with every scope, asking for none
    status, _ = await gateway.call("GET", "/account", key=made["apiKey"])
    assert 200 == status
    status, listed = await gateway.call("GET", "/account/keys", key=key)
    assert 200 == status
    mine = next(k for k in listed if k["id"] == made["id"])
    assert ("ci", made["prefix"]) == (mine["name"], mine["prefix"])
    assert mine["expiresAt"] is not None and mine["lastUsedAt"] is not None
    assert made["apiKey"] not in str(listed)
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.api_keys.find_one({"_id": made["id"]})
    assert stored is not None and made["apiKey"] not in str(stored)

    _, other_key = await gateway.tenant()
    status, others = await gateway.call("GET", "/account/keys", key=other_key)
    assert made["id"] not in [k["id"] for k in others]
    status, _ = await gateway.call("DELETE", f"/account/keys/{made['id']}", key=other_key)
    assert 404 == status
    assert tenant_id


async def test_scopes_stay_within_the_makers_and_keys_write_is_needed(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    status, narrow = await gateway.call(
        "POST",
        "/account/keys",
        key=key,
        json={"name": "narrow", "scopes": ["keys:write", "messages:read", "account:read"]},
    )
    assert 201 == status, narrow
    assert ["account:read", "keys:write", "messages:read"] == narrow["scopes"]

    status, body = await gateway.call(
        "POST",
        "/account/keys",
        key=narrow["apiKey"],
        json={"name": "wider", "scopes": ["messages:write"]},
    )
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])
    assert "messages:write" in body["error"]
    status, inherits = await gateway.call(
        "POST", "/account/keys", key=narrow["apiKey"], json={"name": "same"}
    )
    assert (201, narrow["scopes"]) == (status, inherits["scopes"])
    # A narrower key cannot revoke the full one either.
    status, listed = await gateway.call("GET", "/account/keys", key=key)
    full = next(k for k in listed if k["scopes"] is None)
    status, body = await gateway.call("DELETE", f"/account/keys/{full['id']}", key=narrow["apiKey"])
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])

    status, reader = await gateway.call(
        "POST", "/account/keys", key=key, json={"name": "r", "scopes": ["account:read"]}
    )
    assert 201 == status
    status, body = await gateway.call(
        "POST", "/account/keys", key=reader["apiKey"], json={"name": "x"}
    )
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])

    for bad in (
        {"name": ""},
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "expiresAt": "2001-01-01T00:00:00Z"},
        {"name": "x", "expiresAt": "2999-01-01T00:00:00"},
        {"name": "x", "extra": 1},
    ):
        status, body = await gateway.call("POST", "/account/keys", key=key, json=bad)
        assert (400, "Validation error") == (status, body["error"]), bad


async def test_an_expired_key_gets_key_expired_and_a_revoked_one_401(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    status, made = await gateway.call(
        "POST", "/account/keys", key=key, json={"name": "brief", "expiresAt": soon}
    )
    assert 201 == status, made
    assert 200 == (await gateway.call("GET", "/account", key=made["apiKey"]))[0]

    async def expired() -> bool:
        status, body = await gateway.call("GET", "/account", key=made["apiKey"])
        return status == 401 and body["code"] == "KEY_EXPIRED"

    await eventually(expired)

    status, other = await gateway.call("POST", "/account/keys", key=key, json={"name": "gone"})
    status, revoked = await gateway.call("DELETE", f"/account/keys/{other['id']}", key=key)
    assert (200, "gone") == (status, revoked["name"])
    status, body = await gateway.call("GET", "/account", key=other["apiKey"])
    assert (401, "UNAUTHORIZED") == (status, body["code"])
    status, listed = await gateway.call("GET", "/account/keys", key=key)
    assert other["id"] not in [k["id"] for k in listed]
    status, _ = await gateway.call("DELETE", f"/account/keys/{other['id']}", key=key)
    assert 404 == status


async def test_the_store_function_makes_keys_the_api_accepts(gateway: Gateway) -> None:
    tenant_id, _ = await gateway.tenant()
    store = Store(gateway.store_uri, "lanegate_test")
    try:
        _, key = await issue_key(store, tenant_id, ["account:read"], "made outside")
    finally:
        await store.close()
    status, body = await gateway.call("GET", "/account", key=key)
    assert (200, tenant_id) == (status, body["id"])
    status, _ = await gateway.call("GET", "/account/keys", key=key)
    assert 403 == status
