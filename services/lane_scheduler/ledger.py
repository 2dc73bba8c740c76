"""Each instance's pacing record in the store (`lane_state`), written under the shard's epoch."""

from typing import Any

from pymongo import UpdateMany
from pymongo.errors import DuplicateKeyError

from lane_scheduler.ownership import shard_of
from lanegate.lanes import Usage
from lanegate.store import Document, Store
from lanegate.store.grouped import grouped_updates


class Ledger:
    """Reads and fenced writes of `lane_state`.

    The record holds the cap usage (dispatch times of the last hour, counts of
    the local day) and the last dispatch. It is written before every anti-ban
    dispatch with a filter on the owner's epoch, so a replica that lost the
    shard cannot count or send one more message; a new owner stamps its epoch on
    the records first and reads them after, so it sees every dispatch the old
    owner made.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def stamp(self, epochs: dict[int, int]) -> None:
        """Fence every existing record of just-claimed shards with their new epochs (one
        round trip for them all)."""
        if epochs:
            await self._store.lane_state.bulk_write(
                [
                    UpdateMany(
                        {"shard": shard, "epoch": {"$lt": epoch}}, {"$set": {"epoch": epoch}}
                    )
                    for shard, epoch in sorted(epochs.items())
                ],
                ordered=False,
            )

    async def ensure(self, instance: str, epoch: int) -> bool:
        """Make sure the instance has a record carrying `epoch`; False if a newer owner has it."""
        try:
            await self._store.lane_state.insert_one(
                {"_id": instance, "shard": shard_of(instance), "epoch": epoch}
            )
            return True
        except DuplicateKeyError:
            result = await self._store.lane_state.update_one(
                {"_id": instance, "epoch": {"$lte": epoch}}, {"$set": {"epoch": epoch}}
            )
            return result.matched_count == 1

    async def records(self, shards: list[int]) -> dict[str, Document]:
        """Every record of these shards, by instance name."""
        cursor = self._store.lane_state.find({"shard": {"$in": shards}})
        return {doc["_id"]: doc async for doc in cursor}

    async def record(self, instance: str) -> Document | None:
        """One instance's record."""
        return await self._store.lane_state.find_one({"_id": instance})

    async def reserve(
        self, instance: str, epoch: int, usage: Usage, at: float, message_id: str
    ) -> bool:
        """Store the usage including a dispatch; False when this replica was fenced out."""
        changes: dict[str, Any] = {
            "usage": usage.document(),
            "lastDispatchAt": at,
            "lastMessageId": message_id,
        }
        # Reserves of other instances made meanwhile share the write (one of this instance
        # never does); its stamp says whether this one applied.
        return await grouped_updates(self._store, self._store.lane_state).update(
            {"_id": instance, "epoch": epoch}, {"$set": changes}, token="lastReserve"
        )
