"""Sealing stored secrets: plaintext from before encryption, and older keys' tokens.
Each write matches only the values read: runs are idempotent and a concurrent `PATCH` wins."""

from collections.abc import Callable
from typing import Any

import structlog

from lanegate.secrets import SECRET_FIELDS, Keyring
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


async def seal_stored(
    store: Store, keyring: Keyring, advance: Callable[[], None] | None = None
) -> int:
    """Seal every stored secret with the first key, calling `advance` after each instance read;
    returns how many instances changed."""
    if not keyring.enabled:
        return 0
    changed = 0
    found = store.instances.find({}, {"webhookSecret": 1, "providerConfig": 1})
    async for instance in found:
        changes = _resealed(keyring, instance)
        if advance is not None:
            advance()
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
