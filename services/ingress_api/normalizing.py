"""Normalizing stored contact numbers at start: one contact per E.164 number, however it was
written; one number written two ways is merged into one contact."""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web
from pymongo.errors import DuplicateKeyError

from lanegate.phones import InvalidPhoneNumber, normalized
from lanegate.service import STORE
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)


# A contact stored before the E.164 key (or read in another country since) is renamed to that
# form; merged contacts join their tags, keep a name, and are inactive if any of them was.
# Every write is conditional on what was read (the kept contact's number, the merged ones'
# number and last change), so a run is idempotent, a change made meanwhile is merged on the
# next run rather than lost, and several replicas starting together do no harm.
async def normalize_contacts(store: Store, tenant_id: str | None = None) -> int:
    """Normalize the contacts of every tenant (or one); returns how many contacts changed."""
    where = {} if tenant_id is None else {"_id": tenant_id}
    changed = 0
    async for tenant in store.tenants.find(where, {"defaultCountry": 1}):
        changed += await _normalize_tenant(store, tenant["_id"], tenant.get("defaultCountry"))
    if changed:
        log.info("contacts normalized", contacts=changed, tenant=tenant_id)
    return changed


async def _normalize_tenant(store: Store, tenant_id: str, country: str | None) -> int:
    misfits: dict[str, list[str]] = defaultdict(list)
    async for contact in store.contacts.find({"tenantId": tenant_id}, {"identifier": 1}):
        written = contact["identifier"]
        try:
            number = normalized(written, country)
        except InvalidPhoneNumber:
            continue  # kept as it is: no form of it can be sent to
        if number != written:
            misfits[number].append(written)
    changed = 0
    for number, written in misfits.items():
        query = {"tenantId": tenant_id, "identifier": {"$in": [number, *written]}}
        changed += await _merge(store, number, await store.contacts.find(query).to_list(None))
    return changed


def _merged(keep: Document, others: list[Document]) -> dict[str, Any]:
    """The fields of the one contact the group becomes."""
    group = [keep, *others]
    inactive = [c for c in group if c.get("active") is False]
    return {
        "name": next((c["name"] for c in group if c.get("name")), None),
        "tags": sorted({tag for c in group for tag in c.get("tags") or []}),
        "active": not inactive,
        "inactiveReason": inactive[0].get("inactiveReason") if inactive else None,
        "createdAt": min((c["createdAt"] for c in group if c.get("createdAt")), default=None),
        "updatedAt": max((c["updatedAt"] for c in group if c.get("updatedAt")), default=None),
    }


async def _merge(store: Store, number: str, group: list[Document]) -> int:
    """Make `group` one contact numbered `number`; returns how many contacts changed."""
    if not group:
        return 0
    group.sort(key=lambda c: (c["identifier"] != number, c.get("createdAt") or 0, c["_id"]))
    keep, others = group[0], group[1:]
    try:
        kept = await store.contacts.update_one(
            {"_id": keep["_id"], "identifier": keep["identifier"]},
            {"$set": {"identifier": number, **_merged(keep, others)}},
        )
    except DuplicateKeyError:
        return 0  # a send saved this number meanwhile: merged on the next run
    if kept.matched_count == 0:
        return 0  # changed meanwhile (another replica renamed it): merged on the next run
    changed = kept.modified_count
    for other in others:
        gone = await store.contacts.delete_one(
            {
                "_id": other["_id"],
                "identifier": other["identifier"],
                "updatedAt": other.get("updatedAt"),
            }
        )
        changed += gone.deleted_count
    return changed


async def normalizing_at_start(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run `normalize_contacts` in the background once the store is open, so a
    tenant with many contacts does not hold the service's start."""

    async def run() -> None:
        try:
            await normalize_contacts(app[STORE])
        except Exception as e:  # the next start tries again; sends work meanwhile
            log.warning("contact normalization failed", error=repr(e))

    task = asyncio.create_task(run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
