"""Which replica schedules which instances: shards of instances leased in the store."""

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime

import structlog

from lane_scheduler.clock import Clock, stored_time
from lanegate.store import Store
from lanegate.store.bulk import insert_missing

log = structlog.get_logger(__name__)

SHARDS = 64
SAFETY_MARGIN = 1.0  # stop using a lease this long before it ends (clock skew, slow writes)


def shard_of(instance: str) -> int:
    """The shard an instance belongs to (stable across replicas and versions)."""
    return zlib.crc32(instance.encode()) % SHARDS


def _weight(shard: int, replica: str) -> bytes:
    return hashlib.blake2b(f"{shard}:{replica}".encode(), digest_size=8).digest()


def assign(shard: int, replicas: list[str]) -> str | None:
    """The replica that should own `shard` among the live ones (rendezvous hashing)."""
    return max(replicas, key=lambda replica: _weight(shard, replica), default=None)


@dataclass(frozen=True)
class Changes:
    """Shards won (with their new epochs) and shards lost in one ownership pass."""

    gained: dict[int, int]
    lost: set[int]


class Ownership:
    """This replica's leases: claimed, renewed, released, and who owns the others.

    Instances hash onto a fixed number of shards. Every replica heartbeats into
    `scheduler_replicas`; the live replicas split the shards by rendezvous
    hashing, so a joining or leaving replica moves only its share. A replica holds
    a shard through a lease in `scheduler_shards` and renews all of its leases in
    one write every second, apart from the slower pass that reads whose the others
    are and claims or releases; when it dies the leases run out and each shard's new
    owner claims it with a higher epoch. The epoch fences the old owner out of
    every lane-state write, and a replica stops using a shard a margin before its
    own lease ends, so two replicas never pace one instance at once.
    """

    def __init__(self, store: Store, replica: str, clock: Clock, *, lease_seconds: float) -> None:
        self._store = store
        self.replica = replica
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.epochs: dict[int, int] = {}
        self._until: dict[int, float] = {}
        self._owners: dict[int, str] = {}

    async def prepare(self) -> None:
        """Create the shard lease documents once (existing ones are left alone)."""
        # One read instead of a refused insert per existing document, at every start.
        existing = {doc["_id"] async for doc in self._store.scheduler_shards.find({}, {"_id": 1})}
        docs = [
            {"_id": shard, "owner": None, "epoch": 0, "until": stored_time(0)}
            for shard in range(SHARDS)
            if shard not in existing
        ]
        if not docs:
            return
        await insert_missing(self._store.scheduler_shards, docs)

    def running_low(self, shards: set[int]) -> bool:
        """Whether a lease among `shards` still held has less than half its length left."""
        now = self._clock()
        return any(
            self._until[shard] - now < self.lease_seconds / 2
            for shard in shards
            if shard in self._until
        )

    def owns(self, instance: str) -> bool:
        """True while this replica holds a live lease on the instance's shard."""
        shard = shard_of(instance)
        return shard in self.epochs and self._clock() < self._until[shard] - SAFETY_MARGIN

    def live_shards(self) -> int:
        """How many shards this replica holds a live lease on."""
        now = self._clock()
        return sum(1 for shard in self.epochs if now < self._until[shard] - SAFETY_MARGIN)

    def epoch(self, instance: str) -> int | None:
        """The fencing epoch this replica holds for the instance's shard, if it owns it."""
        return self.epochs.get(shard_of(instance)) if self.owns(instance) else None

    def holds(self, instance: str) -> bool:
        """True while the instance's shard is this replica's, even with its renewal late."""
        return shard_of(instance) in self.epochs

    def owner_of(self, instance: str) -> str | None:
        """Where the instance's events go: this replica while it holds the shard, else the
        holder last read from the store (None while nobody holds it).

        A lease that looks lapsed still names its holder: on a slow store renewals come
        late, and a holder that died has no queue left to take the events.
        """
        shard = shard_of(instance)
        if shard in self.epochs:
            return self.replica
        return self._owners.get(shard)

    async def keep(self) -> set[int]:
        """Heartbeat and renew every held lease, two writes; return the shards taken from us."""
        await self._store.scheduler_replicas.update_one(
            {"_id": self.replica}, {"$set": {"seenAt": stored_time(self._clock())}}, upsert=True
        )
        return await self._renew(dict(self.epochs), self._clock())

    async def balance(self) -> Changes:
        """Keep this replica's leases, then release shards others should own and claim free
        ones (the writes that keep the leases come first: on a slow store every round trip
        before them would shorten the leases they extend)."""
        lost = await self.keep()
        changes = await self.rebalance()
        return Changes(changes.gained, lost | changes.lost)

    async def rebalance(self) -> Changes:
        """Read the live replicas and every lease; release shards others should own, claim
        free ones."""
        now = self._clock()
        live = [
            doc["_id"]
            async for doc in self._store.scheduler_replicas.find(
                {"seenAt": {"$gt": stored_time(now - self.lease_seconds)}}, {"_id": 1}
            )
        ]
        leases = {doc["_id"]: doc async for doc in self._store.scheduler_shards.find({})}
        self._owners = {shard: doc["owner"] for shard, doc in leases.items() if doc.get("owner")}
        for shard in self.epochs:  # what was read may predate a claim
            self._owners[shard] = self.replica
        wanted = {shard for shard in range(SHARDS) if assign(shard, live) == self.replica}
        unwanted = set(self.epochs) - wanted
        await self._release(unwanted)
        free = {
            shard for shard in wanted - set(self.epochs) if self._claimable(leases.get(shard), now)
        }
        return Changes(await self._claim(free, now), unwanted)

    def _claimable(self, lease: dict[str, object] | None, now: float) -> bool:
        if lease is None:
            return False
        until = lease["until"]
        expired = isinstance(until, datetime) and until.timestamp() < now
        # Our own id on a live lease is a previous run of this replica (same host and port).
        return lease.get("owner") in (None, self.replica) or expired

    async def _claim(self, shards: set[int], now: float) -> dict[int, int]:
        """Take free or lapsed leases in one write, then read which ones are ours: each
        claim raises the shard's epoch, which fences out its previous owner."""
        if not shards:
            return {}
        until = stored_time(now + self.lease_seconds)
        await self._store.scheduler_shards.update_many(
            {
                "_id": {"$in": sorted(shards)},
                "$or": [
                    {"owner": None},
                    {"owner": self.replica},
                    {"until": {"$lt": stored_time(now)}},
                ],
            },
            {"$set": {"owner": self.replica, "until": until}, "$inc": {"epoch": 1}},
        )
        # Nobody else can take a lease that runs until `until` before then: these are ours.
        gained = {
            int(lease["_id"]): int(lease["epoch"])
            async for lease in self._store.scheduler_shards.find(
                {"_id": {"$in": sorted(shards)}, "owner": self.replica, "until": until},
                {"epoch": 1},
            )
        }
        for shard, epoch in gained.items():
            self.epochs[shard], self._until[shard] = epoch, now + self.lease_seconds
            self._owners[shard] = self.replica
        if gained:
            log.info("shards claimed", shards=sorted(gained))
        return gained

    def _ours(self, epochs: dict[int, int]) -> dict[str, object]:
        """A filter matching the lease documents still held under these epochs."""
        return {
            "owner": self.replica,
            "$or": [{"_id": shard, "epoch": epoch} for shard, epoch in sorted(epochs.items())],
        }

    async def _renew(self, epochs: dict[int, int], now: float) -> set[int]:
        """Extend the leases held under `epochs` in one write; forget and return the ones
        taken from us. A claim or release may run meanwhile: only shards still held under
        the same epoch are updated."""
        if not epochs:
            return set()
        result = await self._store.scheduler_shards.update_many(
            self._ours(epochs), {"$set": {"until": stored_time(now + self.lease_seconds)}}
        )
        kept = set(epochs)
        if result.matched_count != len(epochs):
            # Claimed by another replica (a higher epoch) meanwhile: see which.
            kept = {
                doc["_id"]
                async for doc in self._store.scheduler_shards.find(self._ours(epochs), {"_id": 1})
            }
        unchanged = {shard for shard, epoch in epochs.items() if self.epochs.get(shard) == epoch}
        for shard in kept & unchanged:
            self._until[shard] = now + self.lease_seconds
        taken = unchanged - kept
        for shard in taken:
            log.warning("shard lease lost", shard=shard)
            self.forget(shard)
        return taken

    async def _release(self, shards: set[int]) -> None:
        """Give leases back in one write so their new owner can claim them at once."""
        if not shards:
            return
        await self._store.scheduler_shards.update_many(
            self._ours({shard: self.epochs[shard] for shard in shards}),
            {"$set": {"owner": None, "until": stored_time(0)}},
        )
        log.info("shards released", shards=sorted(shards))
        for shard in shards:
            self.forget(shard)

    def forget(self, shard: int) -> None:
        """Stop treating a shard as ours (lease lost, released, or fenced out)."""
        self.epochs.pop(shard, None)
        self._until.pop(shard, None)
        if self._owners.get(shard) == self.replica:
            # Until the next pass reads the new owner, nobody is known to hold it: events wait.
            del self._owners[shard]

    async def release_all(self) -> None:
        """Give every shard back and leave the replica list (a clean shutdown)."""
        await self._release(set(self.epochs))
        await self._store.scheduler_replicas.delete_one({"_id": self.replica})
