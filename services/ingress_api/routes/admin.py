"""Operator endpoints: tenants and their API keys."""

from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from ingress_api.accept.lookups import LOOKUPS
from ingress_api.accounts.limits import LIMIT_FIELDS, refuse_unknown_plan
from ingress_api.accounts.users import create_user, user_view
from ingress_api.auth import KEYS, issue_key, require_admin
from ingress_api.normalizing import normalize_contacts
from ingress_api.registry import API
from ingress_api.requests import read_json
from ingress_api.schemas.accounts import UserCreate, UserCreated
from ingress_api.schemas.admin import (
    KeyCreate,
    KeyCreated,
    KeyView,
    TenantCreate,
    TenantCreated,
    TenantUpdate,
    TenantView,
)
from lanegate import tenants
from lanegate.errors import Conflict, NotFound
from lanegate.service import STORE
from lanegate.store import Document
from lanegate.timestamps import iso_utc

QUOTA_FIELDS = frozenset(LIMIT_FIELDS)
# Fields an explicit null puts back to the default (the gateway's; no country).
NULLABLE_FIELDS = QUOTA_FIELDS | {"defaultCountry", "planId"}


def tenant_view(tenant: Document) -> dict[str, Any]:
    return {
        "id": tenant["_id"],
        "name": tenant["name"],
        "disabled": tenant.get("disabled", False),
        "createdAt": iso_utc(tenant["createdAt"]),
        "defaultCountry": tenant.get("defaultCountry"),
        "planId": tenant.get("planId"),
        **{field: tenant.get(field) for field in LIMIT_FIELDS},
    }


def key_view(key: Document) -> dict[str, Any]:
    return {
        "id": key["_id"],
        "name": key.get("name"),
        "scopes": key.get("scopes"),
        "rateLimitPerMinute": key.get("rateLimitPerMinute"),
        "createdAt": iso_utc(key["createdAt"]),
        "revokedAt": iso_utc(key.get("revokedAt")),
        "lastUsedAt": iso_utc(key.get("lastUsedAt")),
    }


async def _tenant(request: web.Request) -> Document:
    tenant = await request.app[STORE].tenants.find_one({"_id": request.match_info["id"]})
    if tenant is None:
        raise NotFound(f"Tenant {request.match_info['id']} not found")
    return tenant


@API.post(
    "/admin/tenants",
    summary="Create a tenant and its first API key",
    tag="admin",
    auth="admin",
    body=TenantCreate,
    response=TenantCreated,
    status=201,
    errors=(400, 401, 409),
)
async def create_tenant(request: web.Request) -> web.Response:
    """Create a tenant and its first API key, shown in this answer only."""
    require_admin(request)
    body = await read_json(request, TenantCreate)
    await refuse_unknown_plan(request.app[STORE], body.planId)
    fields = body.model_dump(exclude={"id", "name"})
    key = await tenants.create_tenant(request.app[STORE], body.id, body.name, **fields)
    return web.json_response({"id": body.id, "name": body.name, "apiKey": key}, status=201)


@API.get(
    "/admin/tenants",
    summary="Every tenant",
    tag="admin",
    auth="admin",
    response=list[TenantView],
    errors=(401,),
)
async def list_tenants(request: web.Request) -> web.Response:
    require_admin(request)
    tenants = await request.app[STORE].tenants.find().sort("_id", 1).to_list(None)
    return web.json_response([tenant_view(t) for t in tenants])


@API.patch(
    "/admin/tenants/{id}",
    summary="Rename, disable, enable or set the quotas or default country of a tenant "
    "(disabled: its keys answer 401)",
    tag="admin",
    auth="admin",
    body=TenantUpdate,
    response=TenantView,
    errors=(400, 401, 404),
)
async def update_tenant(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request, TenantUpdate)
    tenant = await _tenant(request)
    await refuse_unknown_plan(request.app[STORE], body.planId)
    changes = body.model_dump(exclude_none=True)
    # An explicit null puts a quota back to the gateway's default.
    changes |= {
        f: None for f in NULLABLE_FIELDS & body.model_fields_set if getattr(body, f) is None
    }
    if changes:
        await request.app[STORE].tenants.update_one({"_id": tenant["_id"]}, {"$set": changes})
        request.app[KEYS].forget(tenant_id=tenant["_id"])
    if changes.get("defaultCountry"):  # numbers stored without a country code may merge now
        await normalize_contacts(request.app[STORE], tenant["_id"])
        request.app[LOOKUPS].forget_contacts(tenant["_id"])
    return web.json_response(tenant_view(tenant | changes))


@API.post(
    "/admin/tenants/{id}/keys",
    summary="Create another API key for a tenant, optionally limited to scopes",
    tag="admin",
    auth="admin",
    body=KeyCreate,
    response=KeyCreated,
    status=201,
    errors=(400, 401, 404),
)
async def create_key(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request, KeyCreate)
    tenant = await _tenant(request)
    scopes = sorted({str(s) for s in body.scopes}) if body.scopes is not None else None
    key_id, key = await issue_key(
        request, tenant["_id"], scopes, body.name, body.rateLimitPerMinute
    )
    answer = {
        "id": key_id,
        "apiKey": key,
        "scopes": scopes,
        "name": body.name,
        "rateLimitPerMinute": body.rateLimitPerMinute,
    }
    return web.json_response(answer, status=201)


@API.get(
    "/admin/tenants/{id}/keys",
    summary="A tenant's API keys (never the keys themselves)",
    tag="admin",
    auth="admin",
    response=list[KeyView],
    errors=(401, 404),
)
async def list_keys(request: web.Request) -> web.Response:
    require_admin(request)
    tenant = await _tenant(request)
    keys = await request.app[STORE].api_keys.find({"tenantId": tenant["_id"]}).to_list(None)
    return web.json_response([key_view(k) for k in sorted(keys, key=lambda k: k["createdAt"])])


@API.delete(
    "/admin/tenants/{id}/keys/{keyId}",
    summary="Revoke an API key; it answers 401 from now on",
    tag="admin",
    auth="admin",
    response=KeyView,
    errors=(401, 404),
)
async def revoke_key(request: web.Request) -> web.Response:
    require_admin(request)
    tenant = await _tenant(request)
    key_id = request.match_info["keyId"]
    key = await tenants.revoke_key(request.app[STORE], tenant["_id"], key_id)
    request.app[KEYS].forget(tenant_id=tenant["_id"], key_id=key_id)
    if key is None:
        raise NotFound("API key not found")
    return web.json_response(key_view(key))


@API.post(
    "/admin/tenants/{id}/users",
    summary="Add a person who signs in to a tenant (its first admin, say): with a password, or "
    "an invitation token shown once",
    tag="admin",
    auth="admin",
    body=UserCreate,
    response=UserCreated,
    status=201,
    errors=(400, 401, 404, 409),
)
async def create_user_for_tenant(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request, UserCreate)
    tenant = await _tenant(request)
    try:
        user, invitation = await create_user(
            request.app[STORE], tenant["_id"], body.email, body.role, body.password
        )
    except DuplicateKeyError as e:
        raise Conflict("A user with this e-mail already exists") from e
    return web.json_response(user_view(user) | {"invitationToken": invitation}, status=201)
