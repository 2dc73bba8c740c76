"""Sealing stored secrets at start, in the background (`lanegate reseal` does it on demand)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from lanegate.sealing import seal_stored
from lanegate.service import KEYRING, STORE

log = structlog.get_logger(__name__)


async def sealing(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run `seal_stored` in the background once the store is open, stopped before
    it closes. The API serves meanwhile: every key of the ring opens what it sealed, so a
    rotation over many instances never holds back readiness."""

    async def seal() -> None:
        try:
            await seal_stored(app[STORE], app[KEYRING])
        except Exception as e:
            # The conditional updates make a later start finish the job.
            log.exception(
                "sealing stored secrets failed; the next start tries again", error=repr(e)
            )

    task = asyncio.create_task(seal(), name="seal-stored-secrets")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
