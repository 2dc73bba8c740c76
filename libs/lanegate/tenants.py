"""Tenants and their API keys as stored: what the admin API and the operator CLI both write."""

import hashlib
import secrets
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from lanegate.errors import Conflict
from lanegate.events import utcnow
from lanegate.store import Document, Store

# How much of a key its listing shows, so its owner can tell keys apart ("lg_" and 8 more).
PREFIX_LENGTH = 11


def new_key() -> str:
    """A new API key: 32 random bytes, URL-safe."""
    return "lg_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256 (keys are random, so no salt is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_tenant(store: Store, tenant_id: str, name: str, **fields: Any) -> str:
    """Store a new tenant with `fields` (its limits, plan and defaults) and its first API
    key; returns that key. Raises Conflict when the id is taken."""
    unset = dict.fromkeys(("maxInstances", "maxMessagesPerDay", "defaultCountry"))
    try:
        await store.tenants.insert_one(
            {"_id": tenant_id, "name": name, "createdAt": utcnow(), "disabled": False}
            | unset
            | fields
        )
    except DuplicateKeyError as e:
        raise Conflict(f"Tenant {tenant_id} already exists") from e
    _, key = await issue_key(store, tenant_id)
    return key


async def issue_key(
    store: Store,
    tenant_id: str,
    scopes: list[str] | None = None,
    name: str | None = None,
    rate_limit: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Create and store a key; returns (key id, plain key). The plain key is never stored."""
    key, key_id = new_key(), secrets.token_hex(8)
    await store.api_keys.insert_one(
        {
            "_id": key_id,
            "keyHash": hash_key(key),
            "prefix": key[:PREFIX_LENGTH],
            "tenantId": tenant_id,
            "name": name,
            "scopes": scopes,
            "rateLimitPerMinute": rate_limit,
            "createdAt": utcnow(),
            "expiresAt": expires_at,
            "revokedAt": None,
            "lastUsedAt": None,
        }
    )
    return key_id, key


async def revoke_key(store: Store, tenant_id: str, key_id: str) -> Document | None:
    """Revoke one of a tenant's keys (a revoked one keeps its first revocation time); returns
    the key as stored, or None when the tenant has no such key."""
    query = {"_id": key_id, "tenantId": tenant_id}
    await store.api_keys.update_one({**query, "revokedAt": None}, {"$set": {"revokedAt": utcnow()}})
    return await store.api_keys.find_one(query)
