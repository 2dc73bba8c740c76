"""The API's endpoints as data, declared by the route modules with `@API.get(...)` and the like:
the router and `/openapi.json` are both built from this list."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from ingress_api.error_shapes import ErrorShape

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Auth = Literal["tenant", "admin", "none"]


@dataclass(frozen=True)
class Endpoint:
    """One route with what the OpenAPI document says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: Auth
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    errors: tuple[int, ...]
    scope: str | None
    media: str
    other_ok_statuses: tuple[int, ...]
    # None: errors in the API's own body, written by the error boundary.
    error_shape: ErrorShape | None = None


class Registry:
    """Collects endpoints declared by the handler modules."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        response: Any = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
        auth: Auth = "tenant",
        scope: str | None = None,
        media: str = "application/json",
        other_ok_statuses: tuple[int, ...] = (),
        error_shape: ErrorShape | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare `handler` as the answer to `method path`."""

        if auth == "tenant" and scope is None:
            raise TypeError(f"{method} {path}: a tenant endpoint must name its scope")

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    summary,
                    tag,
                    auth,
                    body,
                    query,
                    response,
                    status,
                    errors,
                    scope,
                    media,
                    other_ok_statuses,
                    error_shape,
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def routes(self) -> list[web.RouteDef]:
        """aiohttp routes for every declared endpoint; each request carries its Endpoint."""
        return [web.route(e.method, e.path, _bound(e)) for e in self.endpoints]


def _bound(endpoint: Endpoint) -> Handler:
    handler = endpoint.handler
    if endpoint.error_shape is not None:
        handler = endpoint.error_shape.answering(handler)

    async def handle(request: web.Request) -> web.StreamResponse:
        request[ENDPOINT] = endpoint
        return await handler(request)

    return handle


def current(request: web.Request) -> Endpoint | None:
    """The declared endpoint serving this request."""
    found: Endpoint | None = request.get(ENDPOINT)
    return found


ENDPOINT = web.RequestKey("endpoint", Endpoint)


API = Registry()
