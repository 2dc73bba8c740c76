"""What gave up: the broker's dead-letter queues and the store's dead webhook deliveries."""

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from lanegate import dead_letters
from lanegate.dead_letters import SERVICE_QUEUES
from lanegate.webhook_replays import REPLAYABLE, reset_deliveries
from operator_cli.connections import Context, opened_broker, opened_store, pass_context, run, show

# How many deliveries one reset covers, as the bulk replay endpoint does.
REPLAY_BATCH = 1000
RELATIVE = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@click.group()
def dlq() -> None:
    """The broker's dead-letter queues (one per service queue): list, replay, purge."""


queue_argument = click.argument("queue", type=click.Choice(SERVICE_QUEUES))


@dlq.command("list")
@click.argument("queue", type=click.Choice(SERVICE_QUEUES), required=False)
@click.option("--limit", default=20, show_default=True, help="Messages shown per queue.")
@pass_context
def list_dead(ctx: Context, queue: str | None, limit: int) -> None:
    """Dead-lettered events with the reason each carries (all queues unless one is named)."""

    async def work() -> tuple[dict[str, int], list[dict[str, Any]]]:
        counts: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        async with opened_broker(ctx.settings) as broker:
            for name in [queue] if queue else SERVICE_QUEUES:
                counts[name], shown = await dead_letters.peek(broker, name, limit)
                rows += shown
        return counts, rows

    counts, rows = run(work)
    show(ctx, rows, ("queue", "id", "kind", "attempts", "reason"))
    if not ctx.as_json:
        for name, count in counts.items():
            click.echo(f"{name}.dead: {count} message(s)")


@dlq.command("replay")
@queue_argument
@click.option("--limit", type=int, help="Replay at most this many (all when omitted).")
@pass_context
def replay_dead(ctx: Context, queue: str, limit: int | None) -> None:
    """Put dead-lettered events back on their service queue with fresh attempts."""

    async def work() -> int:
        async with opened_broker(ctx.settings) as broker:
            return await dead_letters.replay(broker, queue, limit)

    replayed = run(work)
    click.echo(f"{replayed} message(s) put back on {queue}")


@dlq.command("purge")
@queue_argument
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def purge_dead(ctx: Context, queue: str, yes: bool) -> None:
    """Drop every message of one dead-letter queue."""
    if not yes:
        click.confirm(f"Drop every dead-lettered message of {queue}?", abort=True)

    async def work() -> int:
        async with opened_broker(ctx.settings) as broker:
            return await dead_letters.purge(broker, queue)

    click.echo(f"{run(work)} message(s) purged from {queue}.dead")


def parse_since(value: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or a span back from now: 30m, 2h, 7d."""
    relative = RELATIVE.match(value.strip())
    if relative:
        span = timedelta(**{UNITS[relative[2]]: int(relative[1])})
        return datetime.now(UTC) - span
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as e:
        raise click.BadParameter(
            f"{value!r} is neither an ISO 8601 time nor a span such as 30m, 2h or 7d"
        ) from e
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.group()
def deliveries() -> None:
    """Webhook deliveries in the store."""


@deliveries.command("replay")
@click.option("--since", required=True, help="ISO 8601 time, or a span back: 30m, 2h, 7d.")
@click.option("--tenant", "tenant_id", help="Only this tenant's deliveries.")
@click.option("--instance", "instance_name", help="Only this instance's deliveries.")
@click.option("--status", type=click.Choice(REPLAYABLE), default="dead", show_default=True)
@pass_context
def replay_deliveries(
    ctx: Context, since: str, tenant_id: str | None, instance_name: str | None, status: str
) -> None:
    """Deliver again every delivery with this status created since a time (instances whose
    webhook is disabled are skipped and listed)."""
    start = parse_since(since)
    match: dict[str, Any] = {"status": status, "createdAt": {"$gte": start}}
    match |= {"tenantId": tenant_id} if tenant_id else {}
    match |= {"instanceName": instance_name} if instance_name else {}

    async def work() -> tuple[int, list[str]]:
        async with opened_store(ctx.settings) as store, opened_broker(ctx.settings) as broker:
            found: dict[tuple[str, str], list[str]] = defaultdict(list)
            fields = {"tenantId": 1, "instanceName": 1}
            async for d in store.webhook_deliveries.find(match, fields).sort("createdAt", 1):
                found[(d["tenantId"], d["instanceName"])].append(d["_id"])
            off = {
                i["_id"]
                async for i in store.instances.find(
                    {"_id": {"$in": [name for _, name in found]}, "webhookEnabled": False},
                    {"_id": 1},
                )
            }
            replayed = 0
            for (tenant, name), ids in found.items():
                if name in off:
                    continue
                for first in range(0, len(ids), REPLAY_BATCH):
                    batch = ids[first : first + REPLAY_BATCH]
                    replayed += await reset_deliveries(store, broker, tenant, name, batch)
            return replayed, sorted(off)

    replayed, skipped = run(work)
    click.echo(f"{replayed} delivery(ies) replayed since {start.isoformat()}")
    for name in skipped:
        click.echo(f"skipped {name}: its webhook is disabled")
