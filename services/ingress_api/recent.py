"""What this process read from the store a moment ago, trusted for a few seconds."""

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable


class Recent[K, V]:
    """Values read from the store, each trusted for `ttl` seconds after it was read.

    At most `most` are kept (the oldest read goes first); a `ttl` of 0 keeps nothing.
    """

    def __init__(self, ttl: float, most: int = 10_000) -> None:
        self._ttl = ttl
        self._most = most
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._reading: dict[K, asyncio.Future[V | None]] = {}
        self._forgets = 0  # how many times a value was forgotten, to know a read is stale

    def mark(self) -> int:
        """Taken before a read whose values are kept with `put(..., since=mark)`."""
        return self._forgets

    async def read_through(self, key: K, read: Callable[[], Awaitable[V | None]]) -> V | None:
        """The value kept for `key`, else what `read` gives (kept unless None). Callers that
        miss while a read of the same key is under way share it: when a value lapses under
        load, the store sees one read, not one per request."""
        value = self.get(key)
        if value is not None:
            return value
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(read())
            self._reading[key] = reading
            reading.add_done_callback(functools.partial(self._done_reading, key))
        # Shielded: a caller that goes away does not cancel the others' read.
        return await asyncio.shield(reading)

    def _done_reading(self, key: K, reading: asyncio.Future[V | None]) -> None:
        if self._reading.get(key) is not reading:
            return  # forgotten meanwhile: what it read may be older than the change
        del self._reading[key]
        if reading.cancelled() or reading.exception() is not None:
            return
        value = reading.result()
        if value is not None:
            self.put(key, value)

    def get(self, key: K) -> V | None:
        """The value read for `key` less than `ttl` seconds ago, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        until, value = entry
        if until > time.monotonic():
            return value
        del self._entries[key]
        return None

    def put(self, key: K, value: V, since: int | None = None) -> None:
        """Keep a value just read; not when something was forgotten since `mark()` gave
        `since` (what the read found may be older than that change)."""
        if self._ttl <= 0 or (since is not None and since != self._forgets):
            return
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._most:
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
