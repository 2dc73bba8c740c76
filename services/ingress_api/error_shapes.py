"""The error body of another gateway's API, for routes that speak it: its model (for the
OpenAPI document) and how a client error is written in it (the error boundary writes every
other route's)."""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from lanegate.errors import ApiError, PayloadTooLarge

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ErrorShape:
    """How a route's client errors are answered: `body(error)`, described by `model`."""

    model: type[BaseModel]
    body: Callable[[ApiError], dict[str, Any]]

    def answering(self, handler: Handler) -> Handler:
        """`handler`, with the client errors it raises answered in this shape."""

        @functools.wraps(handler)
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except web.HTTPRequestEntityTooLarge:
                error: ApiError = PayloadTooLarge("Request body too large")
            except ApiError as e:
                error = e
            return web.json_response(self.body(error), status=error.status, headers=error.headers)

        return handle
