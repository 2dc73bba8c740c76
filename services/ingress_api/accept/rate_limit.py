"""Requests per minute per API key, taken from a counter in the store in blocks
(`counter_blocks`), so every ingress replica agrees without a round trip per request."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from ingress_api.accept.counter_blocks import BlockCounter
from lanegate.errors import RateLimited
from lanegate.metrics import Handler
from lanegate.service import STORE
from lanegate.store import Document, Store

WINDOW_SECONDS = 60


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


def _counter(key_id: str, window: int) -> tuple[str, Document]:
    # Kept a window past its end, then dropped by the TTL index.
    expires = datetime.fromtimestamp((window + 2) * WINDOW_SECONDS, UTC)
    return f"{key_id}:{window}", {"expiresAt": expires}


class RateLimiter(BlockCounter):
    """Admits requests per key and window from blocks reserved in the store."""

    def __init__(self) -> None:
        super().__init__("rate_limits", WINDOW_SECONDS, _counter)

    async def admit(self, store: Store, key_id: str, limit: int, now: float) -> tuple[bool, Quota]:
        """Count one request: whether it is admitted, and the key's quota after it."""
        taken = await self.take(store, key_id, limit, 1, now)
        return taken.ok, Quota(limit=limit, remaining=taken.remaining, reset=taken.ends)


LIMITER = web.AppKey("rate_limiter", RateLimiter)


async def count_request(
    request: web.Request, key_id: str, limit: int, over: type[RateLimited] = RateLimited
) -> None:
    """Count one request against the key's window; 429 (`over`) with Retry-After once over the
    limit."""
    now = time.time()
    admitted, quota = await request.app[LIMITER].admit(request.app[STORE], key_id, limit, now)
    request[QUOTA] = quota
    if not admitted:
        raise over(
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
