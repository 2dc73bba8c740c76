"""Counts per key and fixed window against a limit, reserved from the store in blocks, so most
takes cost no round trip and the replicas together never hand out more than the limit."""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from lanegate.store import Document, Store

log = structlog.get_logger(__name__)

BLOCK_MAX = 50  # counts one reservation may take (more only when its request lacks more)
BLOCK_SHARE = 8  # ... and at most this share of what is left under the limit
REREAD_SECONDS = 5.0  # how long a counter read says a take cannot fit

Counter = Callable[[str, int], tuple[str, Document]]
"""A key and window's counter: its `_id`, and the fields set when a reservation creates it."""


@dataclass
class Block:
    """This process's share of one key's window."""

    reserved: int = 0  # counts this process took from the window's counter
    used: int = 0  # of which it handed out
    counted: int = 0  # the counter as last read: every replica's reservations
    read_at: float = float("-inf")  # when (time.monotonic())

    @property
    def held(self) -> int:
        """What this process reserved and has not handed out."""
        return self.reserved - self.used

    def give_back(self, count: int) -> None:
        """Hold `count` handed-out counts again, for later takes in the same window."""
        self.used -= min(count, self.used)


@dataclass(frozen=True)
class Taken:
    """What one take got: all it asked for or nothing, and where the key stands after it."""

    ok: bool
    remaining: int  # unreserved under the limit as last read, plus what this process holds
    ends: int  # the window's end, in seconds since the epoch
    block: Block  # where the counts came from, to give them back


# One unconditional `$inc` (an upsert on the window's first reservation) takes a block of
# counts, handed out all of a take or none. A block takes at least what the take in hand
# lacks, otherwise at most BLOCK_MAX and 1/BLOCK_SHARE of what is left under the limit as the
# counter last read, so it shrinks to one as the window fills; of what it took, a process
# keeps only the part that fits under the limit given the counter it gets back. A take the
# limit cannot hold as last read is refused without a round trip, the counter read again at
# most every REREAD_SECONDS (replicas give counts back). Once a block holds less than half of
# the next one, that one is reserved in the background, so a busy key's takes do not wait on
# the store. What a replica reserved and did not hand out makes the others stop a little
# early, and the stored count can run ahead of what was handed out by up to one and a half
# blocks per replica: a process gives back what it holds beyond a block when a take is
# refused or counts come back, and everything it holds when it stops.
class BlockCounter:
    """Counts per key and window of `seconds` (aligned to the epoch; a subclass may count
    calendar windows instead) against a limit, from blocks reserved on the counters of one
    store collection."""

    def __init__(self, collection: str, seconds: int, counter: Counter) -> None:
        self._collection = collection
        self._seconds = seconds
        self._counter = counter
        self._window = 0
        self._blocks: dict[str, Block] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._topping_up: set[asyncio.Task[None]] = set()

    async def take(self, store: Store, key: str, limit: int, count: int, now: float) -> Taken:
        """Take `count` from the key's block in the window of `now`, all or none, reserving
        more in the store when the block lacks them and the limit may still hold them."""
        window = self.window_of(now)
        if window != self._window:
            self._window, self._blocks, self._locks = window, {}, {}
        block = self._blocks.setdefault(key, Block())
        if block.held + limit - block.counted < count and self._stale(block):
            await self._reread(store, key, window, block)  # what others gave back may fit it
        if block.held < count <= block.held + limit - block.counted:
            # One reservation at a time per key: requests that arrive meanwhile share it.
            async with self._locks.setdefault(key, asyncio.Lock()):
                if window != self._window:  # a new window began while this request waited
                    return await self.take(
                        store, key, limit, count, self.window_start(self._window)
                    )
                # Takes that did not wait may use counts meanwhile: reserve until this one fits.
                while block.held < count <= block.held + limit - block.counted:
                    await self._reserve(store, key, window, block, limit, count - block.held)
                if block.held < count:  # refused after all: keep no more than a block
                    await self._trim(store, key, window, block)
        # What this process holds was reserved under the limit of then: when the limit has
        # since been lowered below what is counted, holding counts is no longer enough.
        ok = block.held >= count and block.counted - block.held + count <= limit
        if ok:
            block.used += count
            self._top_up(store, key, window, block, limit)
        remaining = max(0, limit - block.counted) + block.held
        return Taken(ok=ok, remaining=remaining, ends=self.window_start(window + 1), block=block)

    def window_of(self, now: float) -> int:
        """The number of the window `now` (seconds since the epoch) falls in."""
        return int(now) // self._seconds

    def window_start(self, window: int) -> int:
        """When a window begins, in seconds since the epoch."""
        return window * self._seconds

    @staticmethod
    def _ahead(block: Block, limit: int) -> int:
        """The size of the key's next block, as the counter was last read."""
        return min(BLOCK_MAX, (limit - block.counted) // BLOCK_SHARE)

    def _top_up(self, store: Store, key: str, window: int, block: Block, limit: int) -> None:
        """Reserve the next block in the background once the block holds less than half of
        it (none near the limit, where blocks shrink to nothing)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        if block.held * 2 >= self._ahead(block, limit) or lock.locked():
            return
        task = asyncio.create_task(self._fill(store, key, window, block, limit, lock))
        self._topping_up.add(task)
        task.add_done_callback(self._topping_up.discard)

    async def _fill(
        self, store: Store, key: str, window: int, block: Block, limit: int, lock: asyncio.Lock
    ) -> None:
        async with lock:
            if window != self._window or block.held * 2 >= self._ahead(block, limit):
                return  # its window ended, or a take that lacked counts reserved meanwhile
            try:
                await self._reserve(store, key, window, block, limit, 1)
            except Exception as e:  # a take that lacks counts reserves them itself
                log.warning("block not topped up", key=key, error=repr(e))

    async def topped_up(self) -> None:
        """Wait until the blocks being reserved in the background are in."""
        while self._topping_up:
            await asyncio.gather(*self._topping_up)

    @staticmethod
    def _stale(block: Block) -> bool:
        return time.monotonic() - block.read_at >= REREAD_SECONDS

    async def _reread(self, store: Store, key: str, window: int, block: Block) -> None:
        block.read_at = time.monotonic()  # takes refused meanwhile do not read it again
        counter_id, _ = self._counter(key, window)
        counter = await store.db[self._collection].find_one({"_id": counter_id}, {"count": 1})
        block.counted = int(counter["count"]) if counter else 0

    async def give_back(self, store: Store, key: str, block: Block, count: int) -> None:
        """Hold `count` handed-out counts again (their request failed); beyond a block they go
        back to the store, where every replica can use them."""
        if self._blocks.get(key) is not block:
            return  # its window ended
        block.give_back(count)
        await self._trim(store, key, self._window, block)

    async def _trim(self, store: Store, key: str, window: int, block: Block) -> None:
        """Return what this process holds beyond `BLOCK_MAX` to the window's counter (kept
        if the store cannot take it now)."""
        excess = block.held - BLOCK_MAX
        if excess <= 0:
            return
        block.reserved -= excess  # at once, so that no take hands them out meanwhile
        counter_id, _ = self._counter(key, window)
        if await self._uncount(store, counter_id, excess):
            block.counted -= excess
        else:
            block.reserved += excess

    async def _uncount(self, store: Store, counter_id: str, count: int) -> bool:
        """Take `count` off a counter; False (logged) when the store cannot now."""
        try:
            await store.db[self._collection].update_one(
                {"_id": counter_id}, {"$inc": {"count": -count}}
            )
        except Exception as e:
            log.warning("counts not returned to the store", counter=counter_id, error=repr(e))
            return False
        return True

    async def close(self, store: Store) -> None:
        """Return every count this process holds in the current window, in one round trip
        (it stops), once the blocks being topped up are in."""
        await self.topped_up()
        returns = [
            UpdateOne({"_id": self._counter(key, self._window)[0]}, {"$inc": {"count": -b.held}})
            for key, b in self._blocks.items()
            if b.held > 0
        ]
        self._blocks = {}
        if returns:
            try:
                await store.db[self._collection].bulk_write(returns, ordered=False)
            except Exception as e:
                log.warning("counts not returned to the store", count=len(returns), error=repr(e))

    async def _reserve(
        self, store: Store, key: str, window: int, block: Block, limit: int, lacking: int
    ) -> None:
        size = max(lacking, self._ahead(block, limit))
        counter_id, on_insert = self._counter(key, window)
        update = {"$inc": {"count": size}, "$setOnInsert": on_insert}
        for attempt in range(2):
            try:
                counter = await store.db[self._collection].find_one_and_update(
                    {"_id": counter_id},
                    update,
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                if attempt:  # two first requests of a window raced to create it; the retry updates
                    raise
        counted = int(counter["count"]) if counter else size
        # Of the counts just taken, those that fit under the limit are this process's; the
        # rest go back, or they would hold the limit against counts given back later.
        kept = max(0, min(size, limit - (counted - size)))
        block.reserved += kept
        block.counted = counted
        block.read_at = time.monotonic()
        if kept < size and await self._uncount(store, counter_id, size - kept):
            block.counted -= size - kept
