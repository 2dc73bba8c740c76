"""Every declared endpoint is reachable: no two declare one method and path, and none is
shadowed by another's placeholder (the native routes and each compatibility layer share one
router)."""

import re
from collections import Counter

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

import ingress_api.main  # noqa: F401  (declares every endpoint)
from ingress_api.registry import API


def test_no_method_and_path_is_declared_twice() -> None:
    declared = Counter((e.method, e.path) for e in API.endpoints)
    assert [] == [route for route, count in declared.items() if count > 1]


async def test_each_endpoint_is_what_its_own_path_resolves_to() -> None:
    app = web.Application()
    app.router.add_routes(API.routes())
    reached = {}
    for endpoint in API.endpoints:
        path = re.sub(r"\{(\w+)\}", lambda m: f"{m[1]}-1", endpoint.path)
        match = await app.router.resolve(make_mocked_request(endpoint.method, path, app=app))
        route = match.route
        canonical = route.resource.canonical if route.resource is not None else None
        reached[(endpoint.method, endpoint.path)] = (route.method, canonical)
    assert {route: route for route in reached} == reached
