"""One signed POST of a delivery and what came of it."""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from lanegate import __version__
from lanegate.events import utcnow
from lanegate.outbound import AnswerTooLarge, Outbound, TargetRefused
from lanegate.signing import signed_headers
from webhook_dispatcher.metrics import ATTEMPT_SECONDS
from webhook_dispatcher.schedule import parse_retry_after

USER_AGENT = f"lanegate/{__version__}"


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt, as stored in the record's `attempts` list."""

    at: datetime
    status_code: int | None
    duration_ms: float
    error: str | None
    retry_after: float | None = None
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def gone(self) -> bool:
        """The receiver answered 410: it wants no more deliveries at this URL."""
        return self.status_code == 410

    def stored(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "statusCode": self.status_code,
            "durationMs": self.duration_ms,
            "error": self.error,
        }


async def post(
    http: Outbound,
    url: str,
    body: str,
    *,
    webhook_id: str,
    secret: str,
    limit: aiohttp.ClientTimeout,
) -> Attempt:
    """Sign and POST `body` once; only a 2xx counts, redirects are not followed, and an answer
    over the cap fails the attempt."""
    raw = body.encode()
    headers = signed_headers(webhook_id, int(time.time()), raw, secret)
    headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
    at = utcnow()
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    refused = False
    try:
        answer = await http.request("POST", url, data=raw, headers=headers, limit=limit)
        status = answer.status
        if not 200 <= status < 300:
            error = f"HTTP {status}"
            retry_after = parse_retry_after(answer.headers.get("retry-after"))
    except TargetRefused as e:
        error, refused = f"target refused: {e}", True
    except AnswerTooLarge as e:
        error = str(e)
    except TimeoutError:
        error = f"timed out after {limit.total:g} s"
    except aiohttp.ClientError as e:
        error = f"{type(e).__name__}: {e}".rstrip(": ")
    seconds = time.perf_counter() - started
    ATTEMPT_SECONDS.observe(seconds)
    return Attempt(at, status, round(seconds * 1000, 1), error, retry_after, refused)
