"""Tenants, their API keys and every instance, read and written as the admin API does."""

from typing import Any

import click
from pydantic import ValidationError

from ingress_api.operator_overview import instances_page, tenants_page
from ingress_api.schemas.admin import KeyCreate, TenantCreate
from lanegate import tenants as stored
from lanegate.errors import NotFound
from lanegate.events import utcnow
from lanegate.lanes import LANES
from lanegate.store import Store
from lanegate.timestamps import iso_utc
from operator_cli.connections import Context, opened_store, pass_context, run, show


def _valid[M: (TenantCreate, KeyCreate)](model: type[M], fields: dict[str, Any]) -> M:
    """The fields checked as the admin API checks them; a mistake ends the command with it."""
    try:
        return model.model_validate(fields)
    except ValidationError as e:
        issues = "; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in e.errors())
        raise click.BadParameter(issues) from e


async def _tenant(store: Store, tenant_id: str) -> dict[str, Any]:
    tenant = await store.tenants.find_one({"_id": tenant_id})
    if tenant is None:
        raise NotFound(f"Tenant {tenant_id} not found")
    return tenant


@click.group()
def tenants() -> None:
    """Tenants: list, create, disable."""


@tenants.command("list")
@pass_context
def list_tenants(ctx: Context) -> None:
    """Every tenant with its instance and live key counts (--json: its plan and usage today)."""

    async def work() -> list[dict[str, Any]]:
        async with opened_store(ctx.settings) as store:
            _, rows = await tenants_page(store, 0, None, utcnow().date())
        return rows

    columns = ("id", "name", "disabled", "instances", "liveKeys", "createdAt")
    show(ctx, run(work), columns)


@tenants.command("create")
@click.argument("tenant_id")
@click.option("--name", help="Display name (the id when omitted).")
@click.option("--max-instances", type=int, help="Instance quota (the gateway's when omitted).")
@click.option("--max-messages-per-day", type=int, help="Daily message quota.")
@click.option("--default-country", help="ISO country for numbers given without a code.")
@pass_context
def create_tenant(
    ctx: Context,
    tenant_id: str,
    name: str | None,
    max_instances: int | None,
    max_messages_per_day: int | None,
    default_country: str | None,
) -> None:
    """Create a tenant and print its first API key (shown this once)."""
    body = _valid(
        TenantCreate,
        {
            "id": tenant_id,
            "name": name or tenant_id,
            "maxInstances": max_instances,
            "maxMessagesPerDay": max_messages_per_day,
            "defaultCountry": default_country,
        },
    )

    async def work() -> str:
        async with opened_store(ctx.settings) as store:
            quotas = body.model_dump(exclude={"id", "name"})
            return await stored.create_tenant(store, body.id, body.name, **quotas)

    key = run(work)
    show_created(ctx, {"id": body.id, "name": body.name, "apiKey": key})


def show_created(ctx: Context, created: dict[str, Any]) -> None:
    """A new key in full, on a line of its own unless --json (never shown again)."""
    if ctx.as_json:
        show(ctx, [created], ())
        return
    details = ", ".join(f"{k}={v}" for k, v in created.items() if k != "apiKey" and v is not None)
    click.echo(f"created {details}")
    click.echo(f"API key (shown once): {created['apiKey']}")


@tenants.command("disable")
@click.argument("tenant_id")
@click.option("--enable", is_flag=True, help="Enable the tenant again instead.")
@pass_context
def disable_tenant(ctx: Context, tenant_id: str, enable: bool) -> None:
    """Disable a tenant: its keys answer 401 (within LANEGATE_AUTH_CACHE_SECONDS)."""

    async def work() -> None:
        async with opened_store(ctx.settings) as store:
            await _tenant(store, tenant_id)
            await store.tenants.update_one({"_id": tenant_id}, {"$set": {"disabled": not enable}})

    run(work)
    click.echo(f"tenant {tenant_id} {'enabled' if enable else 'disabled'}")


@click.group()
def keys() -> None:
    """A tenant's API keys: create, list, revoke."""


@keys.command("create")
@click.argument("tenant_id")
@click.option("--name", help="What the key is for.")
@click.option("--scope", "scopes", multiple=True, help="Limit the key to a scope (repeatable).")
@click.option("--rate-limit", type=int, help="Requests per minute (the gateway's when omitted).")
@pass_context
def create_key(
    ctx: Context, tenant_id: str, name: str | None, scopes: tuple[str, ...], rate_limit: int | None
) -> None:
    """Create another API key for a tenant and print it (shown this once)."""
    body = _valid(
        KeyCreate,
        {"name": name, "scopes": list(scopes) or None, "rateLimitPerMinute": rate_limit},
    )
    chosen = sorted({str(s) for s in body.scopes}) if body.scopes is not None else None

    async def work() -> tuple[str, str]:
        async with opened_store(ctx.settings) as store:
            await _tenant(store, tenant_id)
            return await stored.issue_key(
                store, tenant_id, chosen, body.name, body.rateLimitPerMinute
            )

    key_id, key = run(work)
    created = {"id": key_id, "tenant": tenant_id, "name": body.name, "scopes": chosen}
    show_created(ctx, created | {"apiKey": key})


def _key_row(key: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": key["_id"],
        "name": key.get("name"),
        "scopes": ",".join(key["scopes"]) if key.get("scopes") is not None else "all",
        "createdAt": iso_utc(key["createdAt"]),
        "lastUsedAt": iso_utc(key.get("lastUsedAt")),
        "revokedAt": iso_utc(key.get("revokedAt")),
    }


@keys.command("list")
@click.argument("tenant_id")
@pass_context
def list_keys(ctx: Context, tenant_id: str) -> None:
    """A tenant's keys, revoked ones included (never the keys themselves)."""

    async def work() -> list[dict[str, Any]]:
        async with opened_store(ctx.settings) as store:
            await _tenant(store, tenant_id)
            found = await store.api_keys.find({"tenantId": tenant_id}).to_list(None)
            return [_key_row(k) for k in sorted(found, key=lambda k: k["createdAt"])]

    show(ctx, run(work), ("id", "name", "scopes", "createdAt", "lastUsedAt", "revokedAt"))


@keys.command("revoke")
@click.argument("tenant_id")
@click.argument("key_id")
@pass_context
def revoke_key(ctx: Context, tenant_id: str, key_id: str) -> None:
    """Revoke a key: it answers 401 (within LANEGATE_AUTH_CACHE_SECONDS)."""

    async def work() -> dict[str, Any]:
        async with opened_store(ctx.settings) as store:
            await _tenant(store, tenant_id)
            key = await stored.revoke_key(store, tenant_id, key_id)
            if key is None:
                raise NotFound(f"API key {key_id} not found for tenant {tenant_id}")
            return _key_row(key)

    row = run(work)
    if ctx.as_json:
        show(ctx, [row], ())
    else:
        click.echo(f"key {key_id} revoked at {row['revokedAt']}")


@click.group()
def instances() -> None:
    """Instances of every tenant."""


@instances.command("list")
@click.option("--tenant", "tenant_id", help="Only this tenant's instances.")
@pass_context
def list_instances(ctx: Context, tenant_id: str | None) -> None:
    """Every instance: tenant, provider, state, pause and the messages waiting per lane."""

    async def work() -> list[dict[str, Any]]:
        async with opened_store(ctx.settings) as store:
            _, rows = await instances_page(store, tenant_id, 0, None)
        return [_instance_row(row) for row in rows]

    columns = ("tenant", "instance", "provider", "state", "paused", *LANES, "total")
    show(ctx, run(work), columns)


def _instance_row(row: dict[str, Any]) -> dict[str, Any]:
    """An overview row as one line of the table: the pause in words, a column per lane."""
    pause = row["pause"]
    paused = None
    if pause:
        paused = f"{pause['by']}: {pause['reason']}"
        paused += f" until {pause['until']}" if pause["until"] else ""
    return {
        "tenant": row["tenantId"],
        "instance": row["instanceName"],
        "provider": row["provider"],
        "state": row["state"],
        "paused": paused,
        **row["waiting"],
        "total": row["waitingTotal"],
    }
