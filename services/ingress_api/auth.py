"""API keys: random, shown once, stored as a hash, scoped; the operator key guards /admin."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from ingress_api.accept.rate_limit import count_request
from ingress_api.accept.ttl_cache import TtlCache
from ingress_api.registry import current
from lanegate.errors import Forbidden, InsufficientScope, Unauthorized
from lanegate.events import utcnow
from lanegate.service import SETTINGS, STORE
from lanegate.store import Document, Store

LAST_USED_RESOLUTION = timedelta(minutes=1)

# Scopes named as other gateways' permissions, and the scopes they grant.
SCOPES_GRANTED = {
    "whatsapp:read": ("instances:read", "templates:read"),
    "whatsapp:write": ("messages:write",),
}
CACHED_KEYS = 10_000


@dataclass(frozen=True)
class Caller:
    """The tenant a request acts for, and the key it used."""

    tenant_id: str
    key_id: str
    max_instances: int | None = None
    max_messages_per_day: int | None = None
    default_country: str | None = None
    key_name: str | None = None


def new_key() -> str:
    """A new API key: 32 random bytes, URL-safe."""
    return "lg_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256 (keys are random, so no salt is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(request: web.Request) -> str | None:
    """The key from `apikey`, `X-API-Key` or `Authorization: Bearer`, whichever is present."""
    key = request.headers.get("apikey") or request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class _Known:
    """A key as last read from the store, with its tenant."""

    record: Document
    tenant: Document
    last_used: datetime | None


class KeyCache:
    """Keys this process has recently seen, so a request costs no key or tenant read.

    A revoked key or a disabled tenant answers 401 at once on the replica that took
    the admin call (it forgets them) and within `ttl` seconds on the others. Unknown
    keys are never cached: a key made a moment ago works at once everywhere.
    """

    def __init__(self, ttl: float) -> None:
        self._known: TtlCache[str, _Known] = TtlCache(ttl, CACHED_KEYS)

    async def lookup(self, store: Store, key_hash: str) -> _Known | None:
        """The live key with this hash and its enabled tenant, or None."""

        async def read() -> _Known | None:
            record = await store.api_keys.find_one({"keyHash": key_hash, "revokedAt": None})
            if record is None:
                return None
            tenant = await store.tenants.find_one(
                {"_id": record["tenantId"], "disabled": {"$ne": True}}
            )
            return None if tenant is None else _Known(record, tenant, record.get("lastUsedAt"))

        return await self._known.read_through(key_hash, read)

    def forget(self, *, tenant_id: str, key_id: str | None = None) -> None:
        """Drop a tenant's cached keys (or one of them) after an admin change."""
        self._known.forget_where(
            lambda _, known: (
                known.record["tenantId"] == tenant_id and key_id in (None, known.record["_id"])
            )
        )


KEYS = web.AppKey("keys", KeyCache)


async def authenticate(request: web.Request) -> Caller:
    """Resolve the request's tenant from its key; 401 if missing, unknown or disabled, 403 if
    the key lacks the endpoint's scope."""
    key = presented_key(request)
    if not key:
        raise Unauthorized("Missing API key")
    store = request.app[STORE]
    # Looked up by its hash: timing reveals nothing about a stored key's plain form.
    known = await request.app[KEYS].lookup(store, hash_key(key))
    if known is None:
        raise Unauthorized("Invalid API key")
    record, tenant = known.record, known.tenant
    endpoint = current(request)
    scopes = record.get("scopes")
    needed = endpoint.scope if endpoint is not None else None
    if needed and scopes is not None and needed not in granted_scopes(scopes):
        raise InsufficientScope(f"This key lacks the {needed} scope")
    limit = record.get("rateLimitPerMinute") or request.app[SETTINGS].rate_limit_per_minute
    await count_request(request, record["_id"], limit)
    now = utcnow()
    if known.last_used is None or now - known.last_used > LAST_USED_RESOLUTION:
        known.last_used = now
        await store.api_keys.update_one({"_id": record["_id"]}, {"$set": {"lastUsedAt": now}})
    return Caller(
        tenant_id=record["tenantId"],
        key_id=record["_id"],
        max_instances=tenant.get("maxInstances"),
        max_messages_per_day=tenant.get("maxMessagesPerDay"),
        default_country=tenant.get("defaultCountry"),
        key_name=record.get("name"),
    )


def granted_scopes(scopes: list[str]) -> set[str]:
    """A key's scopes with those its other gateways' permissions grant."""
    return {*scopes, *(granted for scope in scopes for granted in SCOPES_GRANTED.get(scope, ()))}


def require_admin(request: web.Request) -> None:
    """Check the operator key in constant time; 401 when admin is off or the key is wrong."""
    expected = request.app[SETTINGS].admin_key.get_secret_value()
    key = presented_key(request)
    if not key:
        raise Unauthorized("Missing API key")
    if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
        raise Unauthorized("Invalid API key")


def require_own_instance(caller: Caller, tenant_part: str) -> None:
    """403 when an instance name lies in another tenant's namespace."""
    if tenant_part != caller.tenant_id:
        raise Forbidden("The instanceName must start with your tenantId")


async def issue_key(
    request: web.Request,
    tenant_id: str,
    scopes: list[str] | None = None,
    name: str | None = None,
    rate_limit: int | None = None,
) -> tuple[str, str]:
    """Create and store a key; returns (key id, plain key). The plain key is never stored."""
    key, key_id = new_key(), secrets.token_hex(8)
    await request.app[STORE].api_keys.insert_one(
        {
            "_id": key_id,
            "keyHash": hash_key(key),
            "tenantId": tenant_id,
            "name": name,
            "scopes": scopes,
            "rateLimitPerMinute": rate_limit,
            "createdAt": utcnow(),
            "revokedAt": None,
            "lastUsedAt": None,
        }
    )
    return key_id, key
