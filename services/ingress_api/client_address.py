"""The address of the client behind a request, through the proxies the operator trusts."""

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

Networks = Sequence[IPv4Network | IPv6Network]


def _trusted(address: str, proxies: Networks) -> bool:
    try:
        found = ip_address(address)
    except ValueError:
        return False
    return any(found in network for network in proxies)


def client_address(request: web.Request, proxies: Networks) -> str:
    """The peer's address, or, when the peer is a trusted proxy, the nearest address in
    `X-Forwarded-For` that is not one (each proxy appends the address it took the request
    from, so what a client writes itself stays to the left of it and is never believed)."""
    address = request.remote or "unknown"
    if not _trusted(address, proxies):
        return address
    hops = [
        hop.strip()
        for value in request.headers.getall("X-Forwarded-For", ())
        for hop in value.split(",")
    ]
    for hop in reversed(hops):
        if not hop:
            break
        address = hop
        if not _trusted(hop, proxies):
            break
    return address
