"""Requests per minute per API key, counted in the store so every ingress replica agrees.

Each process reserves a key's requests in blocks: one conditional-free `$inc` on
the window's counter takes several at once, and the process admits requests
from its block without another round trip. A block never takes more than is
left under the limit as the counter last read, and it shrinks to one request
as the window fills, so the replicas together never admit more than the limit;
what a replica reserved but did not use makes the others stop a little early.
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from lanegate.errors import RateLimited
from lanegate.metrics import Handler
from lanegate.service import STORE
from lanegate.store import Store

WINDOW_SECONDS = 60
BLOCK_MAX = 50  # requests one reservation may take
BLOCK_SHARE = 8  # ... and at most this share of what is left under the limit


@dataclass(frozen=True)
class Quota:
    """Where a key stands in the current window."""

    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


QUOTA = web.RequestKey("quota", Quota)


@dataclass
class _Block:
    """This process's share of one key's window."""

    reserved: int = 0  # requests this process took from the window's counter
    used: int = 0  # of which it admitted
    counted: int = 0  # the counter as last read: every replica's reservations


class RateLimiter:
    """Admits requests per key and window from blocks reserved in the store."""

    def __init__(self) -> None:
        self._window = 0
        self._blocks: dict[str, _Block] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def admit(self, store: Store, key_id: str, limit: int, now: float) -> tuple[bool, Quota]:
        """Count one request: whether it is admitted, and the key's quota after it."""
        window = int(now) // WINDOW_SECONDS
        if window != self._window:
            self._window, self._blocks, self._locks = window, {}, {}
        block = self._blocks.setdefault(key_id, _Block())
        if block.used >= block.reserved and block.counted < limit:
            # One reservation at a time per key: requests that arrive meanwhile share it.
            async with self._locks.setdefault(key_id, asyncio.Lock()):
                if window != self._window:  # a new window began while this request waited
                    return await self.admit(store, key_id, limit, self._window * WINDOW_SECONDS)
                if block.used >= block.reserved and block.counted < limit:
                    await self._reserve(store, key_id, window, block, limit)
        reset = (window + 1) * WINDOW_SECONDS
        if block.used >= block.reserved:
            return False, Quota(limit=limit, remaining=0, reset=reset)
        block.used += 1
        # Unreserved under the limit (as last read), plus what this process still holds.
        remaining = max(0, limit - block.counted) + block.reserved - block.used
        return True, Quota(limit=limit, remaining=remaining, reset=reset)

    async def _reserve(
        self, store: Store, key_id: str, window: int, block: _Block, limit: int
    ) -> None:
        size = max(1, min(BLOCK_MAX, (limit - block.counted) // BLOCK_SHARE))
        reset = (window + 1) * WINDOW_SECONDS
        update = {
            "$inc": {"count": size},
            # Kept a window past its end, then dropped by the TTL index.
            "$setOnInsert": {"expiresAt": datetime.fromtimestamp(reset + WINDOW_SECONDS, UTC)},
        }
        for attempt in range(2):
            try:
                counter = await store.rate_limits.find_one_and_update(
                    {"_id": f"{key_id}:{window}"},
                    update,
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                if attempt:  # two first requests of a window raced to create it; the retry updates
                    raise
        counted = int(counter["count"]) if counter else size
        # Of the requests just taken, those that fit under the limit are this process's.
        block.reserved += max(0, min(size, limit - (counted - size)))
        block.counted = counted


LIMITER = web.AppKey("rate_limiter", RateLimiter)


async def count_request(request: web.Request, key_id: str, limit: int) -> None:
    """Count one request against the key's window; 429 with Retry-After once over the limit."""
    now = time.time()
    admitted, quota = await request.app[LIMITER].admit(request.app[STORE], key_id, limit, now)
    request[QUOTA] = quota
    if not admitted:
        raise RateLimited(
            f"Rate limit of {limit} requests per minute exceeded",
            headers={"Retry-After": str(max(1, quota.reset - int(now)))},
        )


@web.middleware
async def quota_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the key's quota on every answer, errors included."""
    response = await handler(request)
    quota = request.get(QUOTA)
    if quota is not None:
        response.headers.update(quota.headers())
    return response
