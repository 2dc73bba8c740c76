"""The `lanegate` command: the operator's view of the gateway, through its store and broker."""

import asyncio
import sys
from collections.abc import Awaitable, Callable

import aio_pika
import click
from aiormq.exceptions import ChannelNotFoundEntity
from rich.progress import Progress

from lanegate.broker import Broker
from lanegate.sealing import seal_stored
from lanegate.secrets import Keyring, SecretKeyError, require_keys
from lanegate.settings import Settings
from lanegate.store import Store
from lanegate.store.changes import CHANGES, index_names, pending_changes
from lanegate.store.indexes import INDEXES, gaps
from operator_cli.connections import UNREACHABLE, Context, opened_store, pass_context, run
from operator_cli.dead_letters import deliveries, dlq
from operator_cli.tenants import instances, keys, tenants

# How long `check` waits for each dependency before calling it down.
CHECK_TIMEOUT_SECONDS = 10.0


@click.group()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def cli(click_context: click.Context, as_json: bool) -> None:
    """Operate a lanegate gateway with the services' own LANEGATE_* settings."""
    click_context.obj = Context(as_json)


for group in (tenants, keys, instances, dlq, deliveries):
    cli.add_command(group)


@cli.command()
@pass_context
def reseal(ctx: Context) -> None:
    """Seal every stored secret with the first key of LANEGATE_SECRET_KEY (after a rotation,
    before the old key is removed)."""
    settings = ctx.settings
    try:
        keyring = Keyring(settings.secret_key.get_secret_value())
    except SecretKeyError as e:
        raise click.ClickException(str(e)) from e
    if not keyring.enabled:
        raise click.ClickException("LANEGATE_SECRET_KEY is not set: there is no key to seal with")

    async def work() -> tuple[int, int]:
        async with opened_store(settings) as store:
            total = await store.instances.count_documents({})
            with Progress(transient=ctx.as_json) as progress:
                task = progress.add_task("resealing instances", total=total)
                try:
                    changed = await seal_stored(store, keyring, lambda: progress.advance(task))
                except SecretKeyError as e:
                    raise click.ClickException(str(e)) from e
            return changed, total

    changed, total = run(work)
    click.echo(f"{changed} of {total} instance(s) resealed with the current key")


async def _check_store(store: Store) -> tuple[str, str]:
    await store.ping()
    return "ok", f"{store.db.name} answers"


async def _check_indexes(store: Store) -> tuple[str, str]:
    missing, retired = [], []
    for collection in INDEXES:
        lacking, kept = gaps(collection, await index_names(store.db[collection]))
        missing += [f"{collection}.{model.document['name']}" for model in lacking]
        retired += [f"{collection}.{name}" for name in kept]
    declared = sum(len(models) for models in INDEXES.values())
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {declared} missing: {', '.join(missing)}")
    if retired:
        problems.append(
            f"{len(retired)} retired still there (a start drops them): {', '.join(retired)}"
        )
    if problems:
        return "FAIL", "; ".join(problems)
    return "ok", f"all {declared} present"


async def _check_changes(store: Store) -> tuple[str, str]:
    pending = await pending_changes(store.db)
    if pending:
        return "FAIL", (
            f"{len(pending)} of {len(CHANGES)} not applied (a service's start applies them):"
            f" {'; '.join(pending)}"
        )
    return "ok", f"all {len(CHANGES)} applied"


type Line = tuple[str, str, str]  # what, ok or FAIL, the detail

STORE_PROBES: tuple[tuple[str, Callable[[Store], Awaitable[tuple[str, str]]]], ...] = (
    ("store", _check_store),
    ("indexes", _check_indexes),
    ("changes", _check_changes),
)


async def _probed(probe: Awaitable[tuple[str, str]]) -> tuple[str, str]:
    """A probe's outcome, FAIL when what it asks does not answer within the check's time."""
    try:
        return await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except (*UNREACHABLE, OSError) as e:
        return "FAIL", f"unreachable: {e!r}"


async def _store_lines(settings: Settings) -> list[Line]:
    """The store's lines, on one client: once it does not answer, the rest are not asked."""
    store = Store(settings.mongo_uri.get_secret_value(), settings.mongo_db)
    lines: list[Line] = []
    try:
        for name, probe in STORE_PROBES:
            if lines and lines[0][1] != "ok":
                lines.append((name, "FAIL", "not checked: the store does not answer"))
            else:
                lines.append((name, *await _probed(probe(store))))
    finally:
        await store.close()
    return lines


async def _check_broker(settings: Settings) -> tuple[str, str]:
    broker = Broker(settings.amqp_dsn(), settings.namespace)
    connection = await aio_pika.connect(settings.amqp_dsn())
    try:
        missing, dead = [], 0
        for name in broker.queue_names():
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                if name.endswith(".dead"):
                    dead += queue.declaration_result.message_count or 0
            except ChannelNotFoundEntity:
                missing.append(name)
            finally:
                if not channel.is_closed:
                    await channel.close()
        if missing:
            return "FAIL", f"{len(missing)} queue(s) missing: {', '.join(missing)}"
        return "ok", f"namespace {settings.namespace}, {dead} dead-lettered message(s)"
    finally:
        await connection.close()


def _check_settings(settings: Settings) -> tuple[str, str]:
    try:
        require_keys(
            settings.secret_key.get_secret_value(),
            settings.admin_key.get_secret_value(),
            development=settings.env == "development",
        )
        keyring = Keyring(settings.secret_key.get_secret_value())
    except SecretKeyError as e:
        return "FAIL", str(e)
    sealing = "secrets sealed" if keyring.enabled else "secrets stored unencrypted"
    admin = "admin API on" if settings.admin_key.get_secret_value() else "admin API off"
    return "ok", f"env {settings.env}, {sealing}, {admin}"


@cli.command()
@pass_context
def check(ctx: Context) -> None:
    """Settings, store, indexes, store changes and broker: one line each; exit status 1 when
    one fails."""
    if ctx.problem is not None:
        click.echo(f"settings  FAIL  {ctx.problem}")
        sys.exit(1)
    settings = ctx.settings
    lines: list[Line] = [("settings", *_check_settings(settings))]
    lines += asyncio.run(_store_lines(settings))
    lines.append(("broker", *asyncio.run(_probed(_check_broker(settings)))))
    for name, status, detail in lines:
        click.echo(f"{name:<9} {status:<5} {detail}")
    if any(status != "ok" for _, status, _ in lines):
        sys.exit(1)
