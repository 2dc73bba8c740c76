"""The client's address through trusted proxies, read by a real aiohttp server on 127.0.0.1."""

from collections.abc import AsyncIterator
from ipaddress import ip_network

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingress_api.client_address import Networks, client_address

LOOPBACK = [ip_network("127.0.0.1/32")]
INTERNAL = [ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8")]
ELSEWHERE = [ip_network("10.0.0.0/8")]


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A server answering the address it reads under the proxies its `?trust=` names."""
    trusted: dict[str, Networks] = {"loopback": LOOPBACK, "internal": INTERNAL, "none": ELSEWHERE}

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=client_address(request, trusted[request.query["trust"]]))

    app = web.Application()
    app.router.add_get("/", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/"))
    await server.close()


async def _address(url: str, trust: str, forwarded: str | None = None) -> str:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, params={"trust": trust}, headers=headers) as response,
    ):
        return await response.text()


@pytest.mark.parametrize(
    ("trust", "forwarded", "expected"),
    [
        ("loopback", None, "127.0.0.1"),  # no proxy said anything
        ("loopback", "203.0.113.9", "203.0.113.9"),
        ("loopback", "1.1.1.1, 203.0.113.9", "203.0.113.9"),  # the client's own claim, ignored
        ("internal", "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # two proxies of ours
        ("internal", "10.1.2.3", "10.1.2.3"),  # only proxies: the farthest
        ("loopback", ", 203.0.113.9", "203.0.113.9"),
        ("loopback", "203.0.113.9, ", "127.0.0.1"),  # a broken hop: nothing beyond is believed
        ("none", "203.0.113.9", "127.0.0.1"),  # the peer is no trusted proxy: its header is not
    ],
)
async def test_the_nearest_untrusted_hop_is_the_client(
    url: str, trust: str, forwarded: str | None, expected: str
) -> None:
    assert expected == await _address(url, trust, forwarded)
