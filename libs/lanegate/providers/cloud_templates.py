"""A WhatsApp Business Account's message templates at Meta, read page by page by template-sync.
Pages follow `paging.cursors.after` against the instance's own Graph base URL (never the
host in `paging.next`), so the access token only goes where the instance's config says."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from lanegate.outbound import Outbound
from lanegate.providers.graph import graph_request
from lanegate.store import Document

# Meta's "application request limit reached" (4) and "too many calls for this account" (80007).
THROTTLE_CODES = frozenset({4, 80007})
FIELDS = "id,name,language,status,category,components,quality_score"


class TooManyPages(Exception):
    """Raised when an account still lists a next page after the most pages a sync reads."""


async def template_pages(
    http: Outbound,
    config: Document,
    *,
    limit: aiohttp.ClientTimeout,
    max_pages: int,
    page_size: int = 100,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every page of the WABA's templates, at most `max_pages` (then TooManyPages); raises
    GraphError or ProviderError like any call."""
    params = {"fields": FIELDS, "limit": str(page_size)}
    for _ in range(max_pages):
        answer = await graph_request(
            http,
            "GET",
            config,
            f"{config['wabaId']}/message_templates",
            limit=limit,
            params=params,
        )
        data = answer.get("data")
        yield [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []
        paging = answer.get("paging")
        paging = paging if isinstance(paging, dict) else {}
        cursors = paging.get("cursors")
        after = cursors.get("after") if isinstance(cursors, dict) else None
        if not paging.get("next") or not after:
            return
        params = {**params, "after": str(after)}
    raise TooManyPages(f"The account lists more than {max_pages} pages of templates")
