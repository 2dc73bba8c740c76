"""One-time changes to what is stored, each applied once per store by `Store.connect`.

Every service connects at start, so a change may run in several processes at once, and again
after one was cut short: each is safe to repeat and to run beside itself, and is recorded in
`store_changes` only once it is complete. The indexes a change leaves behind are listed in
`indexes.RETIRED`, which every start drops wherever a process of an earlier release made
them again.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from lanegate.events import utcnow
from lanegate.store.bulk import MOST_PER_WRITE, Document, insert_missing
from lanegate.store.indexes import CHATS_BY_CONTACT
from lanegate.store.keys import chat_id, key_record

log = structlog.get_logger(__name__)

# The server's code for an index that is not there (another process dropped it first).
INDEX_NOT_FOUND = 27

# The partial unique index on the messages that held their externalIds before key records.
OLDER_KEYS_INDEX = "tenant_external_unique"


class CopiesRefused(Exception):
    """Some documents' copies under their new ids were not written: the originals stay."""


async def drop_index(collection: AsyncCollection[Document], name: str) -> None:
    """Drop the index `name`, if another process has not dropped it first."""
    try:
        await collection.drop_index(name)
    except OperationFailure as e:
        if e.code != INDEX_NOT_FOUND:
            raise


async def index_names(collection: AsyncCollection[Document]) -> set[str]:
    """The names of the collection's indexes (a catalog read)."""
    return {index["name"] async for index in await collection.list_indexes()}


async def keys_of_older_messages(db: AsyncDatabase[Document]) -> int:
    """Give the messages stored while their partial unique index held the keys a key record
    each, then drop that index; how many messages had a key (0 on a store without it)."""
    if OLDER_KEYS_INDEX not in await index_names(db["messages"]):
        return 0
    count = 0
    async for part in _pages(db["messages"], {"externalId": {"$type": "string"}}):
        await insert_missing(db["message_keys"], [key_record(message) for message in part])
        count += len(part)
    await drop_index(db["messages"], OLDER_KEYS_INDEX)
    return count


async def key_chats(db: AsyncDatabase[Document]) -> int:
    """Give every chat the id `chat_id` makes, and drop the unique index it no longer needs;
    how many chats moved.

    The index goes first, since a chat's copy under its new id repeats its contact. Each
    original goes only once its copy is there (written now or by another process); when a
    copy is refused (the index made again meanwhile by a process of an earlier release), the
    rest stay and `CopiesRefused` is raised, so the change is not recorded and runs again."""
    chats = db["chats"]
    if CHATS_BY_CONTACT in await index_names(chats):
        await drop_index(chats, CHATS_BY_CONTACT)
    moved = 0
    async for part in _pages(chats, {}):
        copies: dict[object, Document] = {}
        for chat in part:
            key = chat_id(chat["tenantId"], chat["instanceName"], chat["contact"])
            if chat["_id"] != key:
                copies[chat["_id"]] = chat | {"_id": key}
        if not copies:
            continue
        await insert_missing(chats, list(copies.values()))
        there = {
            found["_id"]
            async for found in chats.find(
                {"_id": {"$in": [copy["_id"] for copy in copies.values()]}}, {"_id": 1}
            )
        }
        await chats.delete_many(
            {"_id": {"$in": [old for old, copy in copies.items() if copy["_id"] in there]}}
        )
        moved += len(there)
        if len(there) < len(copies):
            raise CopiesRefused(f"{len(copies) - len(there)} chat(s) could not take their ids")
    return moved


async def _pages(
    collection: AsyncCollection[Document], where: Document
) -> AsyncIterator[list[Document]]:
    """What `where` matches, MOST_PER_WRITE documents at a time in id order, each page a
    read of its own (no cursor held across the writes between them)."""
    after: object = None
    while True:
        since = where if after is None else {**where, "_id": {"$gt": after}}
        page = await collection.find(since).sort("_id", 1).limit(MOST_PER_WRITE).to_list(None)
        if not page:
            return
        yield page
        after = page[-1]["_id"]


# Every change, by the name it is recorded under, in the order they apply.
CHANGES: dict[str, Callable[[AsyncDatabase[Document]], Awaitable[int]]] = {
    "externalIds of older messages in key records": keys_of_older_messages,
    "chats keyed by tenant, instance and contact": key_chats,
}


async def pending_changes(db: AsyncDatabase[Document]) -> list[str]:
    """The names of the changes `db` has not recorded, in the order they apply."""
    recorded = {change["_id"] async for change in db["store_changes"].find({}, {"_id": 1})}
    return [name for name in CHANGES if name not in recorded]


async def apply_changes(db: AsyncDatabase[Document]) -> list[str]:
    """Apply the changes `db` has not recorded, in order; the names of those applied."""
    applied = []
    for name in await pending_changes(db):
        documents = await CHANGES[name](db)
        log.info("store change applied", change=name, documents=documents)
        with contextlib.suppress(DuplicateKeyError):  # another process recorded it first
            await db["store_changes"].insert_one({"_id": name, "appliedAt": utcnow()})
        applied.append(name)
    return applied
