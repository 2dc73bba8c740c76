"""Requests per minute per API key, counted in the store so every ingress replica agrees."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from lanegate.errors import RateLimited
from lanegate.metrics import Handler
from lanegate.service import STORE

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


async def count_request(request: web.Request, key_id: str, limit: int) -> None:
    """Count one request against the key's window; 429 with Retry-After once over the limit."""
    window = int(time.time()) // WINDOW_SECONDS
    reset = (window + 1) * WINDOW_SECONDS
    counters = request.app[STORE].rate_limits
    update = {
        "$inc": {"count": 1},
        # Kept a window past its end, then dropped by the TTL index.
        "$setOnInsert": {"expiresAt": datetime.fromtimestamp(reset + WINDOW_SECONDS, UTC)},
    }
    for attempt in range(2):
        try:
            counter = await counters.find_one_and_update(
                {"_id": f"{key_id}:{window}"},
                update,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            break
        except DuplicateKeyError:
            if attempt:  # two first requests of a window raced to create it; the retry updates
                raise
    count = int(counter["count"]) if counter else 1
    quota = Quota(limit=limit, remaining=max(0, limit - count), reset=reset)
    request[QUOTA] = quota
    if count > limit:
        raise RateLimited(
            f"Rate limit of {limit} requests per minute exceeded",
            headers={"Retry-After": str(max(1, reset - int(time.time())))},
        )


@web.middleware
async def quota_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the key's quota on every answer, errors included."""
    response = await handler(request)
    quota = request.get(QUOTA)
    if quota is not None:
        response.headers.update(quota.headers())
    return response
