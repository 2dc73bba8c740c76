"""What this process read from the store a moment ago, trusted for a few seconds."""

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable


class TtlCache[K, V]:
    """Values read from the store, each trusted for `ttl` seconds after it was read.

    At most `max_entries` are kept (the oldest read goes first); a `ttl` of 0 keeps nothing.
    Through `read_through`, a value in use is read again in the background once past
    half its `ttl`, so its callers do not all wait on the store each time it would lapse.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._reading: dict[K, asyncio.Future[V | None]] = {}
        self._forgets = 0  # how many times a value was forgotten, to know a read is stale

    def mark(self) -> int:
        """Taken before a read whose values are kept with `put(..., since=mark)`."""
        return self._forgets

    async def read_through(self, key: K, read: Callable[[], Awaitable[V | None]]) -> V | None:
        """The value kept for `key`, else what `read` gives (kept unless None). Callers that
        miss while a read of the same key is under way share it: the store sees one read,
        not one per request. A value past half its `ttl` is given at once and read again
        in the background (a read that finds nothing drops it)."""
        kept = self._kept(key)
        if kept is not None:
            left, value = kept
            if left < self._ttl / 2 and key not in self._reading:
                self._read(key, read)
            return value
        reading = self._reading.get(key) or self._read(key, read)
        # Shielded: a caller that goes away does not cancel the others' read.
        return await asyncio.shield(reading)

    def _read(self, key: K, read: Callable[[], Awaitable[V | None]]) -> asyncio.Future[V | None]:
        reading = asyncio.ensure_future(read())
        self._reading[key] = reading
        reading.add_done_callback(functools.partial(self._done_reading, key))
        return reading

    def _done_reading(self, key: K, reading: asyncio.Future[V | None]) -> None:
        if self._reading.get(key) is not reading:
            return  # forgotten meanwhile: what it read may be older than the change
        del self._reading[key]
        if reading.cancelled() or reading.exception() is not None:
            return  # a value still kept lapses at its time; its callers then read again
        value = reading.result()
        if value is None:
            self._entries.pop(key, None)  # gone from the store (a value read ahead)
        else:
            self.put(key, value)

    def get(self, key: K) -> V | None:
        """The value read for `key` less than `ttl` seconds ago, or None."""
        kept = self._kept(key)
        return None if kept is None else kept[1]

    def _kept(self, key: K) -> tuple[float, V] | None:
        """The seconds the value kept for `key` has left, and the value; None (dropped) once
        it lapsed."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        until, value = entry
        left = until - time.monotonic()
        if left > 0:
            return left, value
        del self._entries[key]
        return None

    def put(self, key: K, value: V, since: int | None = None) -> None:
        """Keep a value just read; not when something was forgotten since `mark()` gave
        `since` (what the read found may be older than that change)."""
        if self._ttl <= 0 or (since is not None and since != self._forgets):
            return
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: K) -> None:
        """Drop one value: this process just changed it (a read under way is not kept)."""
        self._entries.pop(key, None)
        self._reading.pop(key, None)
        self._forgets += 1

    def forget_where(self, stale: Callable[[K, V], bool]) -> None:
        """Drop every value `stale` picks, and keep no read under way."""
        self._reading.clear()
        self._forgets += 1
        for key, (_, value) in list(self._entries.items()):
            if stale(key, value):
                del self._entries[key]
