"""The one HTTP client for addresses a tenant gave: provider base URLs, attachment URLs, webhooks.
Every address is checked where the connection is made, redirects are never followed, every
call has a timeout and an answer is read up to a cap."""

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import ThreadedResolver
from aiohttp.abc import ResolveResult
from yarl import URL

# What a webhook, Graph or WAHA answer may weigh; attachments have their own cap.
MAX_ANSWER_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Legacy IPv4 spellings inet_aton accepts (2130706433, 0177.0.0.1, 0x7f.1, 127.1).
_NUMERIC_HOST = frozenset("0123456789abcdefxABCDEFX.")


class TargetRefused(OSError):
    """Raised when an outbound address is not a public one, or the answer redirects elsewhere."""


class AnswerTooLarge(Exception):
    """Raised when an answer body goes past the cap; the connection is dropped unread."""


def refusal(address: Address) -> str | None:
    """Why an address must not be reached from the gateway, or None for a public unicast one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            inner = refusal(address.ipv4_mapped)
            return f"IPv4-mapped {inner}" if inner else None
        if address in IPV4_COMPATIBLE:  # ::, ::1 and ::a.b.c.d: none is a real peer
            return "unspecified, loopback or IPv4-compatible IPv6"
        if any(address in network for network in NAT64):
            return "NAT64 (reaches any IPv4 address through a translator)"
        if address.sixtofour is not None:
            inner = refusal(address.sixtofour)
            return f"6to4 of {inner}" if inner else None
        if address.is_site_local:  # deprecated, yet still routed inside some networks
            return "site-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "carrier-grade NAT (100.64.0.0/10)"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def parse_host(host: str) -> Address | None:
    """The address an IP-literal host names (legacy numeric IPv4 forms too), else None."""
    # A fully qualified name's trailing dot resolves the same: `127.0.0.1.` is loopback.
    bare = host.strip("[]").split("%", 1)[0].removesuffix(".")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and set(bare) <= _NUMERIC_HOST and bare[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def literal_refusal(url: str) -> str | None:
    """Why a URL's host, when it is an IP literal, must not be reached; None otherwise."""
    host = URL(url).host
    address = parse_host(host) if host else None
    reason = refusal(address) if address is not None else None
    return f"{host} is a {reason} address, not a public one" if reason else None


def check_address(host: str, address: str) -> None:
    """Raise TargetRefused unless `address` (what `host` resolved to) is a public one."""
    parsed = parse_host(address)
    reason = "not an IP address" if parsed is None else refusal(parsed)
    if reason:
        named = f"{address} is" if host == address else f"{host} resolves to {address},"
        raise TargetRefused(f"{named} a {reason} address, not a public one")


# Checked in the resolver for names and in the socket factory for every address tried,
# literal or resolved, so neither an IP literal nor DNS rebinding gets past.
class GuardedResolver(ThreadedResolver):
    """Resolves like the default resolver, then refuses a name with any non-public address."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for result in results:
            check_address(host, result["host"])
        return results


def guarded_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """A socket for one address the connector is about to try, refused unless it is public."""
    family, type_, proto, _, sockaddr = addr_info
    address = str(sockaddr[0])
    check_address(address, address)
    return socket.socket(family=family, type=type_, proto=proto)


@dataclass(frozen=True)
class Answer:
    """An answer read whole (within the cap): status, headers and body."""

    status: int
    headers: Mapping[str, str]  # aiohttp's, looked up case-insensitively
    body: bytes

    def refuse_redirect(self, what: str) -> None:
        """Raise TargetRefused when the answer is a redirect, which is never followed."""
        if 300 <= self.status < 400:
            location = URL(self.headers.get("location", "")).with_query(None)
            raise TargetRefused(
                f"{what} answered HTTP {self.status} redirecting to {location or 'nowhere'}; "
                "redirects are not followed"
            )


def check_url(url: str) -> None:
    """Refuse a URL that is not plain http(s) with a host, or that carries credentials."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetRefused(f"the URL must be http or https with a host, not {parsed.scheme!r}")
    if parsed.user is not None or parsed.password is not None:
        raise TargetRefused("the URL must not carry credentials")


def without_query(url: str) -> str:
    """A URL as it may be logged or stored: no query string or fragment (tokens live there)."""
    try:
        return str(URL(url).with_query(None).with_fragment(None).with_user(None))
    except (ValueError, TypeError):
        return "[unreadable URL]"


class Outbound:
    """An HTTP client that reaches only public addresses (unless `allow_private`), never follows
    redirects, and bounds every call by a timeout and every answer by a byte cap."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        connections: int = 100,
    ) -> None:
        guard: dict[str, Any] = (
            {}
            if allow_private
            else {"resolver": GuardedResolver(), "socket_factory": guarded_socket}
        )
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, **guard),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        self.max_answer_bytes = max_answer_bytes

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        limit: aiohttp.ClientTimeout | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer to one request, its body still unread; raises TargetRefused."""
        check_url(url)
        options: dict[str, Any] = {"allow_redirects": False, **kwargs}
        if limit is not None:
            options["timeout"] = limit
        try:
            async with self._session.request(method, url, **options) as response:
                yield response
        except aiohttp.ClientConnectorError as e:
            # The guard's refusal reaches us wrapped in the connector's error.
            if isinstance(e.os_error, TargetRefused):
                raise TargetRefused(str(e.os_error)) from e
            raise

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        limit: aiohttp.ClientTimeout | None = None,
        **kwargs: Any,
    ) -> Answer:
        """One request and its whole answer; raises TargetRefused, AnswerTooLarge, TimeoutError
        or aiohttp.ClientError."""
        async with self.stream(method, url, headers=headers, limit=limit, **kwargs) as r:
            body = await read_capped(r, self.max_answer_bytes)
            return Answer(r.status, r.headers, body)

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._session.close()


async def read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The answer's body, or AnswerTooLarge (and the connection dropped) past `max_bytes`."""
    body = bytearray()
    while chunk := await response.content.read(CHUNK_BYTES):
        body += chunk
        if len(body) > max_bytes:
            response.close()
            raise AnswerTooLarge(f"the answer was larger than {max_bytes} bytes; dropped")
    return bytes(body)
