"""MongoDB through PyMongo's async client: the gateway's source of truth."""

from typing import Any

from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lanegate.metrics import DEPENDENCY_UP
from lanegate.store.indexes import INDEXES

Document = dict[str, Any]


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
        self.webhook_deliveries = self.db["webhook_deliveries"]
        self.lane_state = self.db["lane_state"]
        self.sandbox_outbox = self.db["sandbox_outbox"]
        self.contacts = self.db["contacts"]
        # Uploaded attachments (files and chunks in attachments.files / attachments.chunks).
        self.files = AsyncGridFSBucket(self.db, bucket_name="attachments")
        # The same chunks, read a few at a time so a file is never held whole.
        self.file_chunks = self.db["attachments.chunks"]
        self.rate_limits = self.db["rate_limits"]
        self.conversation_windows = self.db["conversation_windows"]
        # One record per inbound provider message id and instance, so a replay is seen as one.
        self.inbound_seen = self.db["inbound_seen"]
        self.scheduler_shards = self.db["scheduler_shards"]
        self.scheduler_replicas = self.db["scheduler_replicas"]
        self.templates = self.db["templates"]
        self.tenant_usage = self.db["tenant_usage"]
        # One-time codes, each only as a keyed hash.
        self.otp_codes = self.db["otp_codes"]

    async def connect(self) -> None:
        """Reach the server and create the declared indexes it does not have yet."""
        await self.ping()
        for collection, models in INDEXES.items():
            # Listing is a catalog read; asking for existing indexes again costs some engines
            # a pass over the collection, at every start of every service.
            existing = {index["name"] async for index in await self.db[collection].list_indexes()}
            missing = [model for model in models if model.document["name"] not in existing]
            if missing:
                await self.db[collection].create_indexes(missing)

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
        """Close the client's connections."""
        await self._client.close()
