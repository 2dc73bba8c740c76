"""A tenant's own account: what it is, its limits and what it used, and its API keys."""

import contextlib
from datetime import UTC, datetime, time
from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from ingress_api.accept.rate_limit import QUOTA
from ingress_api.accounts.keys import refuse_scopes_beyond, scopes_for_new_key
from ingress_api.accounts.limits import attachment_max_bytes, limits_in_force, tenant_plan
from ingress_api.accounts.usage import day_records, month_start
from ingress_api.accounts.users import (
    ROLE_SCOPES,
    create_user,
    refuse_losing_the_last_admin,
    signs_in_as_admin,
    user_view,
)
from ingress_api.auth import KEYS, Caller, authenticate
from ingress_api.otp.limits import SENDS_PER_HOUR, live_codes
from ingress_api.registry import API
from ingress_api.requests import read_json
from ingress_api.schemas.accounts import (
    AccountView,
    LimitsView,
    OwnKeyCreate,
    OwnKeyCreated,
    OwnKeyView,
    UserCreate,
    UserCreated,
    UserUpdate,
    UserView,
)
from ingress_api.schemas.messages import BULK_MAX_MESSAGES
from lanegate import tenants, usage
from lanegate.errors import Conflict, NotFound, Unauthorized
from lanegate.events import utcnow
from lanegate.providers.capabilities import channel_of
from lanegate.service import SETTINGS, STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

# Days, and so the daily quota, are counted in UTC.
TIMEZONE = "UTC"


async def _tenant(store: Store, caller: Caller) -> Document:
    tenant = await store.tenants.find_one({"_id": caller.tenant_id})
    if tenant is None:  # deleted since its key was cached
        raise Unauthorized("Invalid API key")
    return tenant


def _plan_ref(plan: Document | None) -> dict[str, str] | None:
    return None if plan is None else {"id": plan["_id"], "name": plan["name"]}


@API.get(
    "/account",
    summary="The caller's tenant: its plan, settings and how many instances and contacts it has",
    tag="account",
    response=AccountView,
    errors=(401, 403),
    scope="account:read",
)
async def account(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    tenant = await _tenant(store, caller)
    by_state: dict[str, int] = {}
    by_provider: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    groups = await store.instances.aggregate(
        [
            {"$match": {"tenantId": caller.tenant_id}},
            {"$group": {"_id": {"state": "$state", "provider": "$provider"}, "n": {"$sum": 1}}},
        ]
    )
    async for group in groups:
        state, provider = group["_id"]["state"], group["_id"]["provider"]
        by_state[state] = by_state.get(state, 0) + group["n"]
        by_provider[provider] = by_provider.get(provider, 0) + group["n"]
        channel = channel_of(provider)
        by_channel[channel] = by_channel.get(channel, 0) + group["n"]
    contacts = await store.contacts.count_documents({"tenantId": caller.tenant_id})
    answer = {
        "id": tenant["_id"],
        "name": tenant["name"],
        "createdAt": iso_utc(tenant["createdAt"]),
        "plan": _plan_ref(await tenant_plan(store, tenant)),
        "settings": {"defaultCountry": tenant.get("defaultCountry"), "timezone": TIMEZONE},
        "counts": {
            "instances": sum(by_state.values()),
            "instancesByState": by_state,
            "instancesByProvider": by_provider,
            "instancesByChannel": by_channel,
            "contacts": contacts,
        },
    }
    return web.json_response(answer)


@API.get(
    "/account/limits",
    summary="The limits in force for the caller's tenant (its own, else its plan's, else the "
    "gateway's) and what it used of them",
    tag="account",
    response=LimitsView,
    errors=(401, 403),
    scope="account:read",
)
async def limits(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store, settings = request.app[STORE], request.app[SETTINGS]
    tenant = await _tenant(store, caller)
    plan = await tenant_plan(store, tenant)
    chosen = limits_in_force(tenant, plan)
    this_day = utcnow().date()
    midnight = datetime.combine(this_day, time(), UTC)
    instances = await store.instances.count_documents({"tenantId": caller.tenant_id})
    # The accepted messages themselves, by the tenant-and-time index: exact, unlike the quota's
    # counter, which runs ahead by what replicas reserved.
    accepted_today = await store.messages.count_documents(
        {"tenantId": caller.tenant_id, "createdAt": {"$gte": midnight}}
    )
    month = await day_records(store, caller.tenant_id, month_start(this_day), this_day, None)
    quota = request[QUOTA]
    answer: dict[str, Any] = {
        "plan": _plan_ref(plan),
        "instances": {
            "limit": _or(chosen["maxInstances"], settings.tenant_max_instances),
            "used": instances,
        },
        "messagesToday": {
            "limit": _or(chosen["maxMessagesPerDay"], settings.tenant_max_messages_per_day),
            "used": accepted_today,
        },
        # From the usage counters: a month's messages are too many to count on each read.
        "messagesThisMonth": {
            "limit": chosen["maxMessagesPerMonth"],
            "used": sum(int(day.get(usage.Counted.ACCEPTED, 0)) for day in month),
        },
        "requestsPerMinute": {"limit": chosen["requestsPerMinute"], "used": None},
        "requestsPerMinutePerKey": {"limit": quota.limit, "used": quota.limit - quota.remaining},
        "bulkSize": {"limit": _or(chosen["maxBulkSize"], BULK_MAX_MESSAGES), "used": None},
        "attachmentBytes": {
            "limit": attachment_max_bytes(
                chosen["maxAttachmentBytes"], settings.attachment_max_bytes
            ),
            "used": None,
        },
        "otpSendsPerHourPerNumber": {
            "limit": _or(chosen["otpSendsPerHour"], SENDS_PER_HOUR),
            "used": None,
        },
        "otpLiveCodes": {
            "limit": _or(chosen["otpMaxLiveCodes"], settings.otp_max_live_codes),
            "used": await live_codes(store, caller.tenant_id, utcnow()),
        },
    }
    return web.json_response(answer)


def _or(own: int | None, default: int) -> int:
    return default if own is None else own


def own_key_view(key: Document) -> dict[str, Any]:
    return {
        "id": key["_id"],
        "name": key.get("name"),
        "prefix": key.get("prefix"),
        "scopes": key.get("scopes"),
        "createdAt": iso_utc(key["createdAt"]),
        "lastUsedAt": iso_utc(key.get("lastUsedAt")),
        "expiresAt": iso_utc(key.get("expiresAt")),
    }


@API.post(
    "/account/keys",
    summary="Make an API key for the caller's tenant, with scopes within the caller's own "
    "(shown once)",
    tag="account",
    body=OwnKeyCreate,
    response=OwnKeyCreated,
    status=201,
    errors=(400, 401, 403),
    scope="keys:write",
)
async def create_own_key(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, OwnKeyCreate)
    scopes = scopes_for_new_key(caller.scopes, body.scopes)
    key_id, key = await tenants.issue_key(
        request.app[STORE], caller.tenant_id, scopes, body.name, expires_at=body.expiresAt
    )
    answer = {
        "id": key_id,
        "apiKey": key,
        "name": body.name,
        "prefix": key[: tenants.PREFIX_LENGTH],
        "scopes": scopes,
        "expiresAt": iso_utc(body.expiresAt),
    }
    return web.json_response(answer, status=201)


@API.get(
    "/account/keys",
    summary="The tenant's live API keys (never the keys themselves)",
    tag="account",
    response=list[OwnKeyView],
    errors=(401, 403),
    scope="keys:read",
)
async def list_own_keys(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    keys = (
        await request.app[STORE]
        .api_keys.find({"tenantId": caller.tenant_id, "revokedAt": None})
        .to_list(None)
    )
    return web.json_response([own_key_view(k) for k in sorted(keys, key=lambda k: k["createdAt"])])


@API.delete(
    "/account/keys/{id}",
    summary="Revoke one of the tenant's keys (one whose scopes are within the caller's); it "
    "answers 401 from now on",
    tag="account",
    response=OwnKeyView,
    errors=(401, 403, 404),
    scope="keys:write",
)
async def revoke_own_key(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    query = {"_id": request.match_info["id"], "tenantId": caller.tenant_id, "revokedAt": None}
    key = await store.api_keys.find_one(query)
    if key is None:
        raise NotFound("API key not found")
    refuse_scopes_beyond(caller.scopes, key.get("scopes"))
    await store.api_keys.update_one(query, {"$set": {"revokedAt": utcnow()}})
    request.app[KEYS].forget(tenant_id=caller.tenant_id, key_id=key["_id"])
    return web.json_response(own_key_view(key))


@API.post(
    "/account/users",
    summary="Add a person who signs in: with a password, or an invitation token (shown once)",
    tag="account",
    body=UserCreate,
    response=UserCreated,
    status=201,
    errors=(400, 401, 403, 409),
    scope="users:write",
)
async def add_user(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, UserCreate)
    # A key or user cannot make someone who could do more than itself.
    refuse_scopes_beyond(caller.scopes, ROLE_SCOPES[body.role])
    try:
        user, invitation = await create_user(
            request.app[STORE], caller.tenant_id, body.email, body.role, body.password
        )
    except DuplicateKeyError as e:
        raise Conflict("A user with this e-mail already exists") from e
    return web.json_response(user_view(user) | {"invitationToken": invitation}, status=201)


@API.get(
    "/account/users",
    summary="The tenant's users",
    tag="account",
    response=list[UserView],
    errors=(401, 403),
    scope="users:read",
)
async def list_users(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    users = await request.app[STORE].users.find({"tenantId": caller.tenant_id}).to_list(None)
    return web.json_response([user_view(u) for u in sorted(users, key=lambda u: u["email"])])


async def _own_user(store: Store, caller: Caller, user_id: str) -> Document:
    user = await store.users.find_one({"_id": user_id, "tenantId": caller.tenant_id})
    if user is None:
        raise NotFound("User not found")
    return user


@API.patch(
    "/account/users/{id}",
    summary="Change a user's role or disable them (their tokens answer 401 at once)",
    tag="account",
    body=UserUpdate,
    response=UserView,
    errors=(400, 401, 403, 404, 409),
    scope="users:write",
)
async def update_user(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, UserUpdate)
    store = request.app[STORE]
    user = await _own_user(store, caller, request.match_info["id"])
    refuse_scopes_beyond(caller.scopes, ROLE_SCOPES[user["role"]])
    if body.role is not None:
        refuse_scopes_beyond(caller.scopes, ROLE_SCOPES[body.role])
    changes = body.model_dump(exclude_none=True)
    stepping_down = signs_in_as_admin(user) and not signs_in_as_admin(user | changes)
    if stepping_down:
        await refuse_losing_the_last_admin(store, user)
    if changes:
        await store.users.update_one({"_id": user["_id"]}, {"$set": changes})
        if stepping_down:
            try:
                await refuse_losing_the_last_admin(store, user)
            except Conflict:
                undone = {field: user.get(field) for field in changes}
                await store.users.update_one({"_id": user["_id"]}, {"$set": undone})
                raise
    return web.json_response(user_view(user | changes))


@API.delete(
    "/account/users/{id}",
    summary="Remove a user (their tokens answer 401 at once)",
    tag="account",
    response=UserView,
    errors=(401, 403, 404, 409),
    scope="users:write",
)
async def delete_user(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    user = await _own_user(store, caller, request.match_info["id"])
    refuse_scopes_beyond(caller.scopes, ROLE_SCOPES[user["role"]])
    if signs_in_as_admin(user):
        await refuse_losing_the_last_admin(store, user)
    await store.users.delete_one({"_id": user["_id"]})
    if signs_in_as_admin(user):
        try:
            await refuse_losing_the_last_admin(store, user)
        except Conflict:
            with contextlib.suppress(DuplicateKeyError):  # its e-mail was taken meanwhile
                await store.users.insert_one(user)
            raise
    await store.user_sessions.update_many(
        {"userId": user["_id"], "revokedAt": None}, {"$set": {"revokedAt": utcnow()}}
    )
    return web.json_response(user_view(user))
