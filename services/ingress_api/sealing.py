"""Sealing stored secrets at start: plaintext from before encryption, and older keys' tokens.
Each write matches only the values read: runs are idempotent and a concurrent `PATCH` wins."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from lanegate.secrets import SECRET_FIELDS, Keyring
from lanegate.service import KEYRING, STORE
from lanegate.store import Store

log = structlog.get_logger(__name__)


def _resealed(keyring: Keyring, instance: dict[str, Any]) -> dict[str, str]:
    """The fields of one instance whose stored form changes, by their dotted path."""
    changes: dict[str, str] = {}
    secret = instance.get("webhookSecret")
    if isinstance(secret, str) and secret and keyring.reseal(secret) != secret:
        changes["webhookSecret"] = keyring.reseal(secret)
    for field, value in (instance.get("providerConfig") or {}).items():
        if field in SECRET_FIELDS and isinstance(value, str) and value:
            sealed = keyring.reseal(value)
            if sealed != value:
                changes[f"providerConfig.{field}"] = sealed
    return changes


async def seal_stored(store: Store, keyring: Keyring) -> int:
    """Seal every stored secret with the first key; returns how many instances changed."""
    if not keyring.enabled:
        return 0
    changed = 0
    found = store.instances.find({}, {"webhookSecret": 1, "providerConfig": 1})
    async for instance in found:
        changes = _resealed(keyring, instance)
        if not changes:
            continue
        was = {"_id": instance["_id"]}
        for path in changes:
            field = path.removeprefix("providerConfig.")
            was[path] = (
                instance["webhookSecret"] if path == field else instance["providerConfig"][field]
            )
        result = await store.instances.update_one(was, {"$set": changes})
        changed += result.modified_count
    if changed:
        log.info("stored secrets sealed with the current key", instances=changed)
    return changed


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
