"""Instances: a tenant's WhatsApp numbers, their state and their lifecycle."""

import secrets
from dataclasses import asdict
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from ingress_api.accept.lookups import LOOKUPS
from ingress_api.accept.quotas import check_instance_quota
from ingress_api.auth import authenticate, require_own_instance
from ingress_api.registry import API
from ingress_api.requests import (
    clear_waiting,
    own_instance,
    pause_view,
    read_json,
    read_query,
    refuse_private_targets,
)
from ingress_api.rpc import ask, check_number
from ingress_api.schemas.base import parse_instance_name
from ingress_api.schemas.instances import (
    PROVIDER_CONFIGS,
    InstanceCreate,
    InstanceCreated,
    InstanceDeleted,
    InstanceDevice,
    InstanceQuery,
    InstanceStatus,
    InstanceUpdate,
    InstanceView,
    stored_provider_config,
)
from lanegate.errors import (
    BadGateway,
    Conflict,
    GatewayTimeout,
    InvalidInput,
    TargetNotAllowed,
    Unavailable,
)
from lanegate.events import InstanceConfigured, utcnow
from lanegate.health_guard import health_view, judge
from lanegate.lanes import THROUGHPUT_DEFAULTS, pacing_for
from lanegate.lifecycle import WAITING
from lanegate.outbound import parse_host
from lanegate.providers.capabilities import CAPABILITIES, channel_of, providers_of
from lanegate.service import BROKER, KEYRING, SETTINGS, STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

log = structlog.get_logger(__name__)


def settings_view(instance: Document) -> dict[str, Any]:
    """An instance's own settings as stored, defaults filled in: never its secrets."""
    pacing = pacing_for(instance)
    last_error = instance.get("lastError")
    sync = instance.get("templateSync")
    return {
        "provider": instance["provider"],
        "channel": channel_of(instance["provider"]),
        "displayName": instance.get("displayName"),
        "isPrimary": bool(instance.get("isPrimary")),
        "lanes": {
            lane: {
                "delayMs": [round(policy.min_delay * 1000), round(policy.max_delay * 1000)],
                "perHour": policy.per_hour,
                "perDay": policy.per_day,
            }
            for lane, policy in pacing.lanes.items()
        },
        "timezone": str(pacing.timezone),
        "warmup": instance.get("warmup"),
        "throughput": THROUGHPUT_DEFAULTS | (instance.get("throughput") or {})
        if pacing.throughput is not None
        else None,
        "webhookUrl": instance.get("webhookUrl"),
        "webhookEvents": instance.get("webhookEvents"),
        "webhookEnabled": instance.get("webhookEnabled") is not False,
        "webhookDisabledReason": instance.get("webhookDisabledReason"),
        "webhookDisabledAt": iso_utc(instance.get("webhookDisabledAt")),
        "pause": pause_view(instance),
        "templateSync": {
            "result": sync.get("result"),
            "error": sync.get("error"),
            "since": iso_utc(sync.get("since")),
        }
        if isinstance(sync, dict)
        else None,
        "lastError": {
            "code": str(last_error.get("code")),
            "message": str(last_error.get("message")),
            "at": iso_utc(last_error.get("at")),
        }
        if isinstance(last_error, dict)
        else None,
        "defaultCountry": instance.get("defaultCountry"),
        "health": health_view(instance),
    }


def view(instance: Document) -> dict[str, Any]:
    """An instance as the API shows it: never its secrets."""
    return {
        "instanceName": instance["_id"],
        "clientId": instance["clientId"],
        "state": instance["state"],
        "phoneNumber": instance.get("phoneNumber"),
        "connectedAt": iso_utc(instance.get("connectedAt")),
        "createdAt": iso_utc(instance.get("createdAt")),
        **settings_view(instance),
        **asdict(CAPABILITIES[instance["provider"]]),
    }


async def _make_primary(store: Store, instance: Document) -> None:
    """One primary instance per client: this one, no other."""
    await store.instances.update_many(
        {
            "tenantId": instance["tenantId"],
            "clientId": instance["clientId"],
            "_id": {"$ne": instance["_id"]},
        },
        {"$set": {"isPrimary": False}},
    )


@API.post(
    "/instance/create",
    summary="Register an instance (a WhatsApp number); a Cloud API number is checked with Meta",
    tag="instances",
    body=InstanceCreate,
    response=InstanceCreated,
    status=201,
    errors=(400, 401, 403, 409, 422),
    scope="instances:write",
)
async def create(request: web.Request) -> web.Response:
    """Register an instance in `close` state (it opens when the phone scans the QR), or a
    Cloud API number, which opens as soon as Meta accepts its credentials."""
    caller = await authenticate(request)
    body = await read_json(request, InstanceCreate)
    tenant, client, label = parse_instance_name(body.instanceName) or ("", "", "")
    require_own_instance(caller, tenant)
    try:
        provider_config = stored_provider_config(
            body.provider, body.providerConfig, body.defaultCountry or caller.default_country
        )
    except ValidationError as e:
        raise InvalidInput(
            [(["providerConfig", *err["loc"]], err["msg"]) for err in e.errors()]
        ) from e
    refuse_private_targets(
        request,
        {
            ("webhookUrl",): body.webhookUrl,
            ("providerConfig", "baseUrl"): provider_config.get("baseUrl"),
            ("providerConfig", "host"): relay_url(provider_config),
        },
    )
    refuse_plain_smtp(request, provider_config)
    if body.provider == "waha":
        provider_config["hmacKey"] = secrets.token_urlsafe(32)  # WAHA signs callbacks with it
    store, keyring = request.app[STORE], request.app[KEYRING]
    await check_instance_quota(request, caller)
    instance = {
        "_id": body.instanceName,
        "tenantId": tenant,
        "clientId": client,
        "label": label,
        "provider": body.provider,
        "providerConfig": keyring.seal_config(provider_config),
        "displayName": body.displayName,
        "isPrimary": body.isPrimary,
        "defaultCountry": body.defaultCountry,
        "webhookUrl": str(body.webhookUrl),
        "webhookSecret": keyring.encrypt(body.webhookSecret),
        "webhookEnabled": True,
        "webhookEvents": None,
        "lanes": body.lanes.model_dump(exclude_none=True) if body.lanes else {},
        "timezone": body.timezone or "UTC",
        "warmup": body.warmup.model_dump() if body.warmup else None,
        "throughput": body.throughput.model_dump(exclude_none=True) if body.throughput else {},
        "health": body.health.model_dump() if body.health else {},
        "state": "connecting" if body.provider in CHECKED_PROVIDERS else "close",
        "lastError": None,
        "phoneNumber": None,
        "connectedAt": None,
        "createdAt": utcnow(),
    }
    try:
        await store.instances.insert_one(instance)
    except DuplicateKeyError as e:
        raise Conflict(f"Instance {body.instanceName} already exists") from e
    await check_instance_quota(request, caller, created=body.instanceName)
    if body.isPrimary:
        await _make_primary(store, instance)
    state = instance["state"]
    if body.provider in CHECKED_PROVIDERS:
        state = await check_credentials(request, instance)
    return web.json_response({"instanceName": body.instanceName, "status": state}, status=201)


# Providers whose credentials are checked on create and on a config change (a Cloud API number
# with Meta, an SMTP relay by logging in): open when accepted, close with the reason if not.
CHECKED_PROVIDERS = frozenset({"cloud_api", "smtp"})


def relay_url(config: dict[str, Any]) -> str | None:
    """An SMTP relay's host as a URL, for the guard on tenant-given addresses."""
    host = config.get("host")
    return f"smtp://{host}" if isinstance(host, str) and "security" in config else None


def refuse_plain_smtp(request: web.Request, config: dict[str, Any]) -> None:
    """400 for an SMTP relay without TLS, unless it is on this machine in development."""
    if config.get("security") != "none":
        return
    host = str(config.get("host", ""))
    address = parse_host(host)
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if not (loopback and request.app[SETTINGS].env == "development"):
        raise InvalidInput(
            [
                (
                    ["providerConfig", "security"],
                    "none (no TLS) is only for a loopback relay in development; "
                    "use starttls or tls",
                )
            ]
        )


async def check_credentials(request: web.Request, instance: Document) -> str:
    """Check a Cloud API number with Meta now: the state it reached, `connecting` while the
    check goes on, `close` (the reason in `lastError`) when it could not even be asked."""
    try:
        return await check_number(request, instance)
    except Unavailable as e:
        error = {"code": "check_not_started", "message": e.message, "at": utcnow()}
        await request.app[STORE].instances.update_one(
            {"_id": instance["_id"], "state": "connecting"},
            {"$set": {"state": "close", "lastError": error}},
        )
        log.warning("number check not started", instance=instance["_id"], error=e.message)
        return "close"
    finally:
        request.app[LOOKUPS].forget_instance(instance["tenantId"], instance["_id"])


@API.patch(
    "/instance/{name}",
    summary="Change an instance's webhook (URL, secret, event filter, on/off), name or pacing",
    tag="instances",
    body=InstanceUpdate,
    response=InstanceView,
    errors=(400, 401, 403, 404, 422, 503),
    scope="instances:write",
)
async def update(request: web.Request) -> web.Response:
    """Apply the fields present in the body; lane overrides merge setting by setting."""
    caller = await authenticate(request)
    body = await read_json(request, InstanceUpdate)
    store = request.app[STORE]
    instance = await own_instance(store, caller, request.match_info["name"])
    refuse_private_targets(request, {("webhookUrl",): body.webhookUrl})
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        if field == "lanes" and value is not None:
            for lane, spec in value.model_dump(exclude_none=True).items():
                for key, setting in spec.items():
                    changes[f"lanes.{lane}.{key}"] = setting
        elif field == "throughput" and value is not None:
            for key, setting in value.model_dump(exclude_none=True).items():
                changes[f"throughput.{key}"] = setting
        elif field == "health" and value is not None:
            changes["health.minScore"] = value.minScore
        elif field == "warmup":
            changes["warmup"] = value.model_dump() if value is not None else None
        elif field == "webhookUrl" and value is not None:
            changes["webhookUrl"] = str(value)
            changes["webhookFailingSince"] = None
        elif field == "webhookSecret" and value is not None:
            changes["webhookSecret"] = request.app[KEYRING].encrypt(value)
        elif field == "webhookEnabled" and value is not None:
            changes |= webhook_switch(value)
        elif field == "webhookEvents":
            changes["webhookEvents"] = sorted(set(value)) if value else None
        elif field == "providerConfig" and value is not None:
            country = (
                body.defaultCountry
                if "defaultCountry" in body.model_fields_set
                else instance.get("defaultCountry")
            )
            changes["providerConfig"] = changed_provider_config(
                request, instance, value, country or caller.default_country
            )
        elif value is not None or field in ("displayName", "defaultCountry"):
            changes[field] = value
    if changes:
        changes["updatedAt"] = utcnow()
        await store.instances.update_one(
            {"_id": instance["_id"], "tenantId": caller.tenant_id}, {"$set": changes}
        )
    if body.isPrimary:
        await _make_primary(store, instance)
    if "defaultCountry" in changes:  # sends read it from the kept instance
        request.app[LOOKUPS].forget_instance(caller.tenant_id, instance["_id"])
    if PACING_FIELDS & body.model_fields_set:
        await announce_change(request, instance)
    if "health.minScore" in changes:  # the caps follow the new floor now, not at the next send
        await judge_health(request, instance)
    if "providerConfig" in changes and instance["provider"] in CHECKED_PROVIDERS:
        await check_credentials(request, await own_instance(store, caller, instance["_id"]))
    updated = await own_instance(store, caller, instance["_id"])
    return web.json_response(view(updated))


def changed_provider_config(
    request: web.Request, instance: Document, given: dict[str, Any], country: str | None
) -> dict[str, Any]:
    """The instance's provider config with the given fields changed, validated whole (numbers
    read in `country`) and sealed as stored; 400 naming the bad fields."""
    keyring = request.app[KEYRING]
    current = keyring.open_config(instance.get("providerConfig"))
    model = PROVIDER_CONFIGS[instance["provider"]]
    kept = {key: value for key, value in current.items() if key in model.model_fields}
    try:
        config = stored_provider_config(instance["provider"], kept | given, country)
    except ValidationError as e:
        raise InvalidInput(
            [(["providerConfig", *err["loc"]], err["msg"]) for err in e.errors()]
        ) from e
    if "baseUrl" in given:
        refuse_private_targets(request, {("providerConfig", "baseUrl"): config.get("baseUrl")})
    if "host" in given:
        refuse_private_targets(request, {("providerConfig", "host"): relay_url(config)})
    refuse_plain_smtp(request, config)
    # What the gateway made itself (WAHA's callback key) is not the tenant's to change.
    config |= {key: value for key, value in current.items() if key not in model.model_fields}
    return keyring.seal_config(config)


PACING_FIELDS = {"lanes", "timezone", "warmup", "throughput"}


async def announce_change(request: web.Request, instance: Document) -> None:
    """Tell the instance's scheduler to read it again: its pacing changed (already stored,
    read on takeover), or it is gone."""
    try:
        await request.app[BROKER].publish(
            InstanceConfigured(tenantId=instance["tenantId"], instanceName=instance["_id"])
        )
    except Exception as e:
        raise Unavailable("Settings saved; the scheduler could not be told yet, retry") from e


async def judge_health(request: web.Request, instance: Document) -> None:
    """Hold the instance's day caps to its changed minScore at once."""
    try:
        await judge(request.app[STORE], request.app[BROKER], instance["_id"], utcnow())
    except Exception as e:
        raise Unavailable("Settings saved; the scheduler could not be told yet, retry") from e


def webhook_switch(enabled: bool) -> dict[str, Any]:
    """The instance fields that turn its webhook on (a fresh start) or off (by the tenant)."""
    if enabled:
        return {
            "webhookEnabled": True,
            "webhookFailingSince": None,
            "webhookDisabledAt": None,
            "webhookDisabledReason": None,
        }
    return {
        "webhookEnabled": False,
        "webhookDisabledAt": utcnow(),
        "webhookDisabledReason": "disabled by the tenant",
    }


@API.get(
    "/instance/{name}/status",
    summary="Connection state of an instance and its queued messages",
    tag="instances",
    response=InstanceStatus,
    errors=(400, 401, 403, 404),
    scope="instances:read",
)
async def status(request: web.Request) -> web.Response:
    """Connection state of one instance and how many of its messages wait."""
    store = request.app[STORE]
    instance = await own_instance(store, await authenticate(request), request.match_info["name"])
    queued = await store.messages.count_documents(
        {"instanceName": instance["_id"], "status": {"$in": list(WAITING)}}
    )
    return web.json_response(
        {
            "instanceName": instance["_id"],
            "state": instance["state"],
            "phoneNumber": instance.get("phoneNumber"),
            "connectedAt": iso_utc(instance.get("connectedAt")),
            "messagesQueuedCount": queued,
            **settings_view(instance),
        }
    )


@API.get(
    "/instance/{name}/device",
    summary="The device linked to the instance (null fields while not connected)",
    tag="instances",
    response=InstanceDevice,
    errors=(400, 401, 403, 404),
    scope="instances:read",
)
async def device(request: web.Request) -> web.Response:
    instance = await own_instance(
        request.app[STORE], await authenticate(request), request.match_info["name"]
    )
    linked = instance["state"] == "open"
    return web.json_response(
        {
            "device": instance.get("device") if linked else None,
            "platform": instance.get("platform") if linked else None,
        }
    )


def channel_filter(request: web.Request) -> dict[str, Any]:
    """The store filter of a listing's `?channel=` (none without it)."""
    channel = read_query(request, InstanceQuery).channel
    return {} if channel is None else {"provider": {"$in": providers_of(channel)}}


@API.get(
    "/instances",
    summary="Every instance of your tenant",
    tag="instances",
    query=InstanceQuery,
    response=list[InstanceView],
    errors=(400, 401),
    scope="instances:read",
)
async def list_all(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = {"tenantId": caller.tenant_id} | channel_filter(request)
    found = request.app[STORE].instances.find(query).sort("_id", 1)
    return web.json_response([view(i) for i in await found.to_list(None)])


@API.get(
    "/instances/{clientId}",
    summary="The instances of one of your clients",
    tag="instances",
    query=InstanceQuery,
    response=list[InstanceView],
    errors=(400, 401),
    scope="instances:read",
)
async def list_client(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = {"tenantId": caller.tenant_id, "clientId": request.match_info["clientId"]}
    query |= channel_filter(request)
    found = request.app[STORE].instances.find(query).sort("_id", 1)
    return web.json_response([view(i) for i in await found.to_list(None)])


@API.delete(
    "/instance/{name}",
    summary="Delete an instance: its waiting messages are canceled and its session logged out",
    tag="instances",
    response=InstanceDeleted,
    errors=(400, 401, 403, 404, 503),
    scope="instances:write",
)
async def delete(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    store = request.app[STORE]
    instance = await own_instance(store, caller, request.match_info["name"])
    canceled = await clear_waiting(request, instance)
    logged_out = True
    try:
        await ask(request, instance, "logout")
    except (BadGateway, GatewayTimeout, TargetNotAllowed, Unavailable) as e:
        # The instance goes anyway; the answer says the provider session may still be linked.
        logged_out = False
        log.warning("logout before delete failed", instance=instance["_id"], error=e.message)
    await store.instances.delete_one({"_id": instance["_id"], "tenantId": caller.tenant_id})
    request.app[LOOKUPS].forget_instance(caller.tenant_id, instance["_id"])
    try:
        # Its scheduler drops the line and cancels what a send accepted meanwhile left in it.
        await announce_change(request, instance)
    except Unavailable:
        log.warning(
            "delete not announced: its line stays until its shard is next loaded, and a send"
            " accepted during the delete fails (instance_deleted) instead of being canceled",
            instance=instance["_id"],
        )
    return web.json_response(
        {
            "instanceName": instance["_id"],
            "deleted": True,
            "canceled": canceled,
            "loggedOut": logged_out,
        }
    )
