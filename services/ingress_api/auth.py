"""Who a request acts for: API keys (random, shown once, stored as a hash, scoped) or a
signed-in user's access token; the operator key guards /admin."""

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from ingress_api.accept.rate_limit import count_request
from ingress_api.accounts.limits import limits_in_force, tenant_plan
from ingress_api.accounts.tokens import TokenKeys, looks_like_access_token, session_revoked
from ingress_api.accounts.users import ROLE_SCOPES
from ingress_api.registry import current
from lanegate import tenants
from lanegate.errors import (
    Forbidden,
    InsufficientScope,
    KeyExpired,
    TenantRateLimited,
    Unauthorized,
)
from lanegate.events import utcnow
from lanegate.requests_log import note_tenant
from lanegate.service import SETTINGS, STORE
from lanegate.store import Document, Store
from lanegate.tenants import hash_key
from lanegate.ttl_cache import TtlCache

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
    # None: every scope.
    scopes: tuple[str, ...] | None = None
    max_bulk_size: int | None = None
    max_messages_per_month: int | None = None
    max_attachment_bytes: int | None = None
    otp_sends_per_hour: int | None = None
    otp_max_live_codes: int | None = None


def presented_key(request: web.Request) -> str | None:
    """The key from `apikey`, `X-API-Key` or `Authorization: Bearer`, whichever is present."""
    key = request.headers.get("apikey") or request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class _Known:
    """A key as last read from the store, with its tenant and the tenant's plan."""

    record: Document
    tenant: Document
    plan: Document | None
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
            if tenant is None:
                return None
            plan = await tenant_plan(store, tenant)
            return _Known(record, tenant, plan, record.get("lastUsedAt"))

        return await self._known.read_through(key_hash, read)

    def forget(self, *, tenant_id: str, key_id: str | None = None) -> None:
        """Drop a tenant's cached keys (or one of them) after an admin change."""
        self._known.forget_where(
            lambda _, known: (
                known.record["tenantId"] == tenant_id and key_id in (None, known.record["_id"])
            )
        )

    def forget_plan(self, plan_id: str) -> None:
        """Drop the cached keys of every tenant on a plan after the plan changed."""
        self._known.forget_where(lambda _, known: known.tenant.get("planId") == plan_id)


KEYS = web.AppKey("keys", KeyCache)
TOKEN_KEYS = web.AppKey("token_keys", TokenKeys)


async def authenticate(request: web.Request) -> Caller:
    """Resolve the request's tenant from its key; 401 if missing, unknown or disabled, 403 if
    the key lacks the endpoint's scope."""
    key = presented_key(request)
    if not key:
        raise Unauthorized("Missing API key")
    store = request.app[STORE]
    if looks_like_access_token(key):
        return await _signed_in(request, key)
    # Looked up by its hash: timing reveals nothing about a stored key's plain form.
    known = await request.app[KEYS].lookup(store, hash_key(key))
    if known is None:
        raise Unauthorized("Invalid API key")
    record, tenant = known.record, known.tenant
    note_tenant(request, record["tenantId"])
    now = utcnow()
    if record.get("expiresAt") is not None and record["expiresAt"] <= now:
        raise KeyExpired("This API key has expired")
    scopes = record.get("scopes")
    limit = record.get("rateLimitPerMinute") or request.app[SETTINGS].rate_limit_per_minute
    limits = await _admit(request, tenant, known.plan, scopes, (record["_id"], limit), "key")
    if known.last_used is None or now - known.last_used > LAST_USED_RESOLUTION:
        known.last_used = now
        await store.api_keys.update_one({"_id": record["_id"]}, {"$set": {"lastUsedAt": now}})
    return _caller(tenant, limits, record["_id"], record.get("name"), scopes)


async def _admit(
    request: web.Request,
    tenant: Document,
    plan: Document | None,
    scopes: Sequence[str] | None,
    counted: tuple[str, int],
    holder: str,
) -> dict[str, int | None]:
    """403 when `scopes` lack the endpoint's; count the request against the tenant's and the
    credential's (`counted`: its counter and limit) rates; the tenant's limits in force."""
    endpoint = current(request)
    needed = endpoint.scope if endpoint is not None else None
    if needed and scopes is not None and needed not in granted_scopes(scopes):
        raise InsufficientScope(f"This {holder} lacks the {needed} scope")
    limits = limits_in_force(tenant, plan)
    if limits["requestsPerMinute"] is not None:
        # Counted per tenant too: more keys must not mean more requests.
        await count_request(
            request, f"tenant:{tenant['_id']}", limits["requestsPerMinute"], TenantRateLimited
        )
    await count_request(request, *counted)
    return limits


async def _signed_in(request: web.Request, token: str) -> Caller:
    """The caller a sign-in access token stands for: its user's tenant with its role's scopes;
    401 when the token is bad or expired, its session ended, or its user or tenant disabled."""
    claims = request.app[TOKEN_KEYS].check(token)
    store = request.app[STORE]
    user = await store.users.find_one({"_id": claims.user_id, "tenantId": claims.tenant_id})
    tenant = await store.tenants.find_one({"_id": claims.tenant_id, "disabled": {"$ne": True}})
    if user is None or user.get("disabled") or tenant is None:
        raise Unauthorized("Invalid access token")
    note_tenant(request, tenant["_id"])
    if await session_revoked(store, claims.session_id):
        raise Unauthorized("Signed out")
    scopes = ROLE_SCOPES.get(user["role"], ())
    per_user = (f"user:{user['_id']}", request.app[SETTINGS].rate_limit_per_minute)
    plan = await tenant_plan(store, tenant)
    limits = await _admit(request, tenant, plan, scopes, per_user, "user's role")
    return _caller(tenant, limits, f"user:{user['_id']}", user["email"], scopes)


def _caller(
    tenant: Document,
    limits: dict[str, int | None],
    key_id: str,
    key_name: str | None,
    scopes: Sequence[str] | None,
) -> Caller:
    return Caller(
        tenant_id=tenant["_id"],
        key_id=key_id,
        max_instances=limits["maxInstances"],
        max_messages_per_day=limits["maxMessagesPerDay"],
        default_country=tenant.get("defaultCountry"),
        key_name=key_name,
        scopes=None if scopes is None else tuple(scopes),
        max_bulk_size=limits["maxBulkSize"],
        max_messages_per_month=limits["maxMessagesPerMonth"],
        max_attachment_bytes=limits["maxAttachmentBytes"],
        otp_sends_per_hour=limits["otpSendsPerHour"],
        otp_max_live_codes=limits["otpMaxLiveCodes"],
    )


def granted_scopes(scopes: Sequence[str]) -> set[str]:
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
    return await tenants.issue_key(request.app[STORE], tenant_id, scopes, name, rate_limit)
