"""The one Graph API client: base URL, version, bearer token, and how an error answer reads.
The `cloud_api` provider and template-sync both call Meta through `graph_request`; each
decides for itself what Meta's error code means for its work."""

import json
from typing import Any

import aiohttp

from lanegate.outbound import Outbound
from lanegate.providers import ProviderError
from lanegate.providers.calls import call
from lanegate.store import Document


class GraphError(Exception):
    """Raised when the Graph API answers with an error status; `code` is Meta's error code."""

    def __init__(self, http_status: int, body: Any) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        self.http_status = http_status
        self.body = body
        self.code: int | None = code if isinstance(code, int) else None
        self.message = str(error.get("message") or f"Graph API answered HTTP {http_status}")
        super().__init__(f"{self.code}: {self.message}")


def graph_url(config: Document, path: str) -> str:
    """The URL of `path` under the instance's Graph base URL and version."""
    return f"{config['baseUrl']}/{config['graphVersion']}/{path}"


async def graph_request(
    http: Outbound,
    method: str,
    config: Document,
    path: str,
    *,
    limit: aiohttp.ClientTimeout,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One Graph API call with the instance's token; raises GraphError, Refused, or a retryable
    ProviderError when Meta cannot be reached."""
    headers = {"Authorization": f"Bearer {config['accessToken']}"}
    answer = await call(
        http,
        "Graph API",
        method,
        graph_url(config, path),
        json=body,
        params=params,
        headers=headers,
        limit=limit,
    )
    try:
        decoded = json.loads(answer.body) if answer.body else {}
    except ValueError as e:
        raise ProviderError("bad_answer", "Graph API answered with no JSON", retryable=True) from e
    if answer.status >= 400:
        raise GraphError(answer.status, decoded)
    return decoded if isinstance(decoded, dict) else {}
