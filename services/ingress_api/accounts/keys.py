"""API keys made for a tenant: random, shown once, stored as a hash, with a visible prefix."""

import hashlib
import secrets
from collections.abc import Collection
from datetime import datetime

from lanegate.errors import InsufficientScope
from lanegate.events import utcnow
from lanegate.store import Store

# How much of a key its listing shows, so its owner can tell keys apart ("lg_" and 8 more).
PREFIX_LENGTH = 11


def new_key() -> str:
    """A new API key: 32 random bytes, URL-safe."""
    return "lg_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256 (keys are random, so no salt is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(
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


def scopes_for_new_key(
    holder: Collection[str] | None, asked: Collection[str] | None
) -> list[str] | None:
    """The scopes a key made by a key holding `holder` (None: every scope) gets: what it asked
    for (none asked: the holder's own), when within the holder's; 403 otherwise."""
    scopes = sorted(set(asked)) if asked is not None else holder
    refuse_scopes_beyond(holder, scopes)
    return None if scopes is None else sorted(scopes)


def refuse_scopes_beyond(holder: Collection[str] | None, scopes: Collection[str] | None) -> None:
    """403 INSUFFICIENT_SCOPE when `scopes` (None: every scope) are not all within `holder`."""
    if holder is None:
        return
    if scopes is None:
        raise InsufficientScope(
            "Only a key with every scope can do this for a key with every scope"
        )
    beyond = sorted(set(scopes) - set(holder))
    if beyond:
        raise InsufficientScope(
            f"A key cannot reach beyond its own scopes; it lacks {', '.join(beyond)}"
        )
