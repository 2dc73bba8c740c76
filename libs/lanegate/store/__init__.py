"""MongoDB through PyMongo's async client: the gateway's source of truth."""

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from lanegate.metrics import DEPENDENCY_UP
from lanegate.store.bulk import MOST_PER_WRITE as MOST_PER_WRITE
from lanegate.store.bulk import Document as Document
from lanegate.store.bulk import in_parts as in_parts
from lanegate.store.changes import apply_changes, drop_index
from lanegate.store.indexes import INDEXES, gaps
from lanegate.store.sweeper import TTL_REFUSED, Expiry


async def update_in_parts(
    collection: AsyncCollection[Document],
    where: Document,
    change: Document,
    ids: Sequence[Any] | None = None,
) -> int:
    """`update_many(where, change)`, at most MOST_PER_WRITE documents to a command: the ids
    `where` matches (or `ids`, when the caller has them) a part at a time, each part still
    held to `where`, so a document that stopped matching meanwhile is left alone; how many
    changed."""
    if ids is None:
        ids = [found["_id"] async for found in collection.find(where, {"_id": 1})]
    changed = 0
    for part in in_parts(ids):
        result = await collection.update_many({**where, "_id": {"$in": list(part)}}, change)
        changed += result.modified_count
    return changed


@runtime_checkable
class Holding(Protocol):
    """A grouped writer that holds writes for later (usage counts): the store's `close` has
    it write them first."""

    async def write_held(self) -> None: ...


class Store:
    """One client and the gateway's collections; open with `connect`, close with `close`."""

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=5000, connect=False
        )
        self.db: AsyncDatabase[Document] = self._client[database]
        self.tenants = self.db["tenants"]
        self.api_keys = self.db["api_keys"]
        self.instances = self.db["instances"]
        self.messages = self.db["messages"]
        # One record per tenant and externalId, claimed before its message is stored.
        self.message_keys = self.db["message_keys"]
        self.webhook_deliveries = self.db["webhook_deliveries"]
        self.lane_state = self.db["lane_state"]
        self.sandbox_outbox = self.db["sandbox_outbox"]
        self.contacts = self.db["contacts"]
        # One record per instance and day: what the health score counts.
        self.instance_health = self.db["instance_health"]
        # Uploaded attachments (files and chunks in attachments.files / attachments.chunks).
        self.files = AsyncGridFSBucket(self.db, bucket_name="attachments")
        # The same chunks, read a few at a time so a file is never held whole.
        self.file_chunks = self.db["attachments.chunks"]
        self.rate_limits = self.db["rate_limits"]
        self.conversation_windows = self.db["conversation_windows"]
        # One record per inbound provider message id and instance, so a replay is seen as one.
        self.inbound_seen = self.db["inbound_seen"]
        # Receipts that came before their send was recorded, for the send to apply.
        self.early_receipts = self.db["early_receipts"]
        self.scheduler_shards = self.db["scheduler_shards"]
        self.scheduler_replicas = self.db["scheduler_replicas"]
        self.templates = self.db["templates"]
        self.tenant_usage = self.db["tenant_usage"]
        # One record per tenant, instance and day: what `GET /account/usage` reads.
        self.usage_days = self.db["usage_days"]
        # What contacts wrote (outbound messages stay in `messages`), and one row per chat.
        self.inbound_messages = self.db["inbound_messages"]
        self.chats = self.db["chats"]
        # A tenant's lead sources and pipeline statuses, which contacts name by id.
        self.sources = self.db["sources"]
        self.statuses = self.db["statuses"]
        self.contact_comments = self.db["contact_comments"]
        # Groups of contacts; a contact lists the ones it is in (`groupIds`).
        self.groups = self.db["groups"]
        # The TTL indexes the server refused, whose documents a sweeper removes (see `connect`).
        self.swept: list[Expiry] = []
        # One-time codes, each only as a keyed hash.
        self.otp_codes = self.db["otp_codes"]
        # Per tenant and number, the times of its latest code sends (the hourly limit).
        self.otp_number_sends = self.db["otp_number_sends"]
        # The limits the operator sells; a tenant names one by `planId`.
        self.plans = self.db["plans"]
        # People who sign in (e-mail unique gateway-wide), their sessions and refresh tokens.
        self.users = self.db["users"]
        self.user_sessions = self.db["user_sessions"]
        self.refresh_tokens = self.db["refresh_tokens"]
        # Integer ids per tenant for APIs that name instances and templates by number: one
        # record per thing numbered, and each tenant's last number of each kind.
        self.numbered_ids = self.db["numbered_ids"]
        self.id_counters = self.db["id_counters"]
        # The process's grouped writers (`lanegate.store.grouped`), one of a kind per collection.
        self._grouped: dict[tuple[object, str], Any] = {}

    def grouped[G](
        self, kind: Callable[[AsyncCollection[Document]], G], collection: AsyncCollection[Document]
    ) -> G:
        """The one `kind` of grouped writer of `collection` (one of this store's), made on
        first use."""
        if collection.database.name != self.db.name:
            raise ValueError(f"{collection.full_name} is not a collection of this store")
        key = (kind, collection.name)
        if key not in self._grouped:
            self._grouped[key] = kind(collection)
        made: G = self._grouped[key]
        return made

    async def connect(self) -> None:
        """Reach the server, apply the one-time changes it has not had (`store.changes`), drop
        the retired indexes it has and create the declared ones it does not have yet; a TTL
        index it refuses is made without its expiry, listed in `swept` for a sweeper."""
        await self.ping()
        await apply_changes(self.db)
        self.swept = []
        for collection, models in INDEXES.items():
            # Listing is a catalog read; asking for existing indexes again costs some engines
            # a pass over the collection, at every start of every service.
            existing = {
                index["name"]: index async for index in await self.db[collection].list_indexes()
            }
            missing, retired = gaps(collection, existing.keys())
            for name in retired:
                await drop_index(self.db[collection], name)
            expiring = [model for model in models if "expireAfterSeconds" in model.document]
            plain = [model for model in missing if model not in expiring]
            if plain:
                await self.db[collection].create_indexes(plain)
            for model in expiring:
                found = existing.get(model.document["name"])
                if found is None and await self._create_ttl(collection, model):
                    continue
                if found is None or "expireAfterSeconds" not in found:
                    [field] = model.document["key"]
                    seconds = float(model.document["expireAfterSeconds"])
                    self.swept.append(Expiry(collection, field, seconds))

    async def _create_ttl(self, collection: str, model: IndexModel) -> bool:
        """Create a TTL index; when the server refuses the option, the same index without
        it, and False."""
        try:
            await self.db[collection].create_indexes([model])
        except OperationFailure as e:
            if e.code not in TTL_REFUSED:
                raise
            options = {
                k: v for k, v in model.document.items() if k not in ("key", "expireAfterSeconds")
            }
            await self.db[collection].create_indexes(
                [IndexModel(list(model.document["key"].items()), **options)]
            )
            return False
        return True

    async def ping(self) -> bool:
        """Ask the server to answer; raises when it cannot be reached."""
        try:
            await self.db.command("ping")
        except Exception:
            DEPENDENCY_UP.labels("store").set(0)
            raise
        DEPENDENCY_UP.labels("store").set(1)
        return True

    async def close(self) -> None:
        """Let the grouped writers that hold writes for later (counts) write them, then close
        the client's connections."""
        for writer in list(self._grouped.values()):
            if isinstance(writer, Holding):
                await writer.write_held()
        self._grouped.clear()
        await self._client.close()
