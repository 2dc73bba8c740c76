"""The store and the broker as the services reach them, opened for one command."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiormq.exceptions
import click
from pydantic import ValidationError
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table

from lanegate.broker import Broker
from lanegate.errors import ApiError
from lanegate.settings import Settings
from lanegate.store import Store

UNREACHABLE = (PyMongoError, aiormq.exceptions.AMQPError, ConnectionError, TimeoutError)
# Wide enough that ids and keys are never cut, whatever the terminal.
console = Console(soft_wrap=True)


class Context:
    """What every command gets: the settings (or why they could not be read) and the format."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.problem: str | None = None
        self._settings: Settings | None = None
        try:
            self._settings = Settings()
        except ValidationError as e:
            fields = ", ".join(
                f"LANEGATE_{'.'.join(map(str, err['loc'])).upper()}: {err['msg']}"
                for err in e.errors()
            )
            self.problem = f"invalid settings ({fields})"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise click.ClickException(self.problem or "settings not read")
        return self._settings


pass_context = click.make_pass_decorator(Context)


def run[T](work: Callable[[], Awaitable[T]]) -> T:
    """Run one command's async work; a refusal (an unknown tenant, a taken id) ends it with
    the message and exit status 1."""

    async def guarded() -> T:
        try:
            return await work()
        except ApiError as e:
            raise click.ClickException(e.message) from e
        except UNREACHABLE as e:
            raise click.ClickException(f"store or broker unreachable: {e}") from e

    return asyncio.run(guarded())


@contextlib.asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[Store]:
    """The store the services use, reached (not changed) for one command."""
    store = Store(settings.mongo_uri.get_secret_value(), settings.mongo_db)
    try:
        await store.ping()
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def opened_broker(settings: Settings) -> AsyncIterator[Broker]:
    """The broker under the services' namespace, its topology declared as every service does."""
    broker = Broker(settings.amqp_dsn(), settings.namespace)
    try:
        await broker.connect()
        yield broker
    finally:
        await broker.close()


def show(ctx: Context, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print rows as JSON lines' worth of a list (--json) or as a table of `columns`."""
    if ctx.as_json:
        click.echo(json.dumps(list(rows), default=str, indent=2))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    console.print(table)
