"""One HTTP call to a provider's tenant-given base URL, through the guarded outbound client.
A refused address, a redirect or an oversized answer is the tenant's configuration: it fails
at once (no retry) and is kept on the instance as its `lastError`."""

from typing import Any

import aiohttp

from lanegate.events import utcnow
from lanegate.outbound import Answer, AnswerTooLarge, Outbound, TargetRefused, without_query
from lanegate.providers import ProviderError
from lanegate.store import Store

TARGET_REFUSED = "target_refused"


class Refused(ProviderError):
    """Raised when the outbound guard refuses a provider call (address, redirect, answer size)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, retryable=False)


async def call(
    http: Outbound,
    what: str,
    method: str,
    url: str,
    *,
    limit: aiohttp.ClientTimeout,
    **kwargs: Any,
) -> Answer:
    """One request to `what` (a provider's name); raises Refused, or a retryable ProviderError
    when the provider cannot be reached."""
    try:
        answer = await http.request(method, url, limit=limit, **kwargs)
        answer.refuse_redirect(what)
    except TargetRefused as e:
        raise Refused(TARGET_REFUSED, f"{what} at {without_query(url)} refused: {e}") from e
    except AnswerTooLarge as e:
        raise Refused("answer_too_large", f"{what} at {without_query(url)}: {e}") from e
    except TimeoutError as e:
        raise ProviderError("timeout", f"{what} did not answer in time", retryable=True) from e
    except aiohttp.ClientError as e:
        raise ProviderError("network", f"{what} unreachable: {e}", retryable=True) from e
    return answer


async def record_refusal(store: Store, instance_name: str, error: ProviderError) -> None:
    """Keep a refused call's reason on the instance, where the tenant sees it."""
    if isinstance(error, Refused):
        await store.instances.update_one(
            {"_id": instance_name},
            {"$set": {"lastError": {"code": error.code, "message": error.message, "at": utcnow()}}},
        )
