"""One-time changes to what is stored, each applied once per store by `Store.connect`.

Every service connects at start, so a change may run in several processes at once, and again
after one was cut short: each is safe to repeat and to run beside itself, and is recorded in
`store_changes` only once it is complete.
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from lanegate.events import utcnow
from lanegate.store.bulk import MOST_PER_WRITE, insert_missing

log = structlog.get_logger(__name__)

type Document = dict[str, Any]

_CHAT_IDS = uuid.UUID("3c0e6b52-8f4d-4a51-b7c2-5d9e1f0a6b83")

# The unique index chats were once upserted by, before their ids came from what they are about.
CHATS_BY_CONTACT = "tenant_instance_contact"

# The server's code for an index that is not there (another process dropped it first).
INDEX_NOT_FOUND = 27


def chat_id(tenant_id: str, instance_name: str, contact: str) -> str:
    """The one id of a tenant's chat with `contact` on an instance: an upsert by it makes one
    chat at most on every engine, with no unique index to keep on each write."""
    return str(uuid.uuid5(_CHAT_IDS, f"{tenant_id}:{instance_name}:{contact}"))


async def key_chats(db: AsyncDatabase[Document]) -> None:
    """Give every chat the id `chat_id` makes, and drop the unique index it no longer needs.

    The index goes first, since a chat's copy under its new id repeats its contact; a copy
    another process made first stays, and the old document goes either way."""
    chats = db["chats"]
    if CHATS_BY_CONTACT in {index["name"] async for index in await chats.list_indexes()}:
        try:
            await chats.drop_index(CHATS_BY_CONTACT)
        except OperationFailure as e:
            if e.code != INDEX_NOT_FOUND:
                raise
    moving: list[tuple[object, Document]] = []
    async for chat in chats.find({}):
        key = chat_id(chat["tenantId"], chat["instanceName"], chat["contact"])
        if chat["_id"] != key:
            moving.append((chat["_id"], chat | {"_id": key}))
        if len(moving) == MOST_PER_WRITE:
            await _move(db, moving)
            moving = []
    if moving:
        await _move(db, moving)


async def _move(db: AsyncDatabase[Document], moving: list[tuple[object, Document]]) -> None:
    """Write each chat's copy under its new id (unless there is one), then remove the old."""
    await insert_missing(db["chats"], [copy for _, copy in moving])
    await db["chats"].delete_many({"_id": {"$in": [old for old, _ in moving]}})


# Every change, by the name it is recorded under, in the order they apply.
CHANGES: dict[str, Callable[[AsyncDatabase[Document]], Awaitable[None]]] = {
    "chats keyed by tenant, instance and contact": key_chats,
}


async def apply_changes(db: AsyncDatabase[Document]) -> list[str]:
    """Apply the changes `db` has not recorded, in order; the names of those applied."""
    recorded = {change["_id"] async for change in db["store_changes"].find({}, {"_id": 1})}
    applied = []
    for name, change in CHANGES.items():
        if name in recorded:
            continue
        await change(db)
        log.info("store change applied", change=name)
        await db["store_changes"].update_one(
            {"_id": name}, {"$setOnInsert": {"appliedAt": utcnow()}}, upsert=True
        )
        applied.append(name)
    return applied
