"""The SSRF guard: outbound URLs (webhooks, attachments) must reach public addresses."""

import ipaddress
import socket
from typing import Any

from aiohttp import ThreadedResolver
from aiohttp.abc import ResolveResult
from yarl import URL


class TargetRefused(OSError):
    """Raised when a URL's host is (or resolves to) a private, loopback or link-local address."""


def is_public(address: str) -> bool:
    """True for a globally routable unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


class GuardedResolver(ThreadedResolver):
    """Resolves like the default resolver, then refuses non-public addresses.

    Checking the addresses the connection will actually use (not a separate
    look-up beforehand) leaves no window for DNS rebinding.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for result in results:
            if not is_public(result["host"]):
                raise TargetRefused(f"webhook host {host} resolves to non-public {result['host']}")
        return results


def check_literal_host(host: str) -> None:
    """Refuse an IP-literal host that is not public (the connector skips the resolver for those)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if not is_public(host.strip("[]")):
        raise TargetRefused(f"webhook host {host} is not a public address")


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL that is not plain http(s), carries credentials or names a private IP."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetRefused(f"webhook URL must be http or https with a host, not {parsed.scheme!r}")
    if parsed.user is not None or parsed.password is not None:
        raise TargetRefused("webhook URL must not carry credentials")
    if not allow_private:
        check_literal_host(parsed.host)


def resolver_for(allow_private: bool) -> Any:
    """The resolver the webhook client should use."""
    return ThreadedResolver() if allow_private else GuardedResolver()
