"""Where a webhook may go: hosts in ``CREWGATE_WEBHOOK_ALLOWED_HOSTS`` whose addresses are
public (unless ``CREWGATE_WEBHOOK_ALLOW_PRIVATE``). Everything about a URL comes from
outside: it is checked at submit and again, with a fresh DNS answer, at each delivery, and
the delivery connects to the very address that was checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from agents.events import EventType

__all__ = [
    "MAX_URL",
    "PUBLIC_EVENT_TYPES",
    "LookupFailed",
    "Refused",
    "Target",
    "check_url",
    "host_allowed",
    "resolve",
]

MAX_URL = 2048
PUBLIC_EVENT_TYPES = frozenset(t.value for t in EventType)
RESOLVE_TIMEOUT_S = 5.0
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(ValueError):
    """A webhook URL that may not be called; the message says why (and which setting)."""


class LookupFailed(Refused):
    """The host name did not resolve now (it may later)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and the address a delivery connects to."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as given
    address: str = ""

    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name (no second lookup)."""
        shown = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{shown}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def check_url(url: str, allowed: tuple[str, ...]) -> Target:
    """The parts of ``url`` if its form and host are allowed; ``Refused`` otherwise."""
    if len(url) > MAX_URL:
        raise Refused(f"the webhook URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"the webhook URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("the webhook URL must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("the webhook URL may not carry a user name or password")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise Refused("the webhook URL may not contain spaces or control characters")
    if not allowed:
        raise Refused("webhooks are off: CREWGATE_WEBHOOK_ALLOWED_HOSTS is empty")
    host = parts.hostname.lower().rstrip(".")
    if not host_allowed(host, allowed):
        raise Refused(f"host {host!r} is not in CREWGATE_WEBHOOK_ALLOWED_HOSTS")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _public(address.ipv4_mapped)
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def resolve(target: Target, *, allow_private: bool) -> Target:
    """``target`` with the address to connect to. Every address the name resolves to must
    be public (unless ``allow_private``): a name that answers with a private one is refused."""
    try:
        addresses = [ipaddress.ip_address(target.host)]
    except ValueError:
        addresses = await _lookup(target.host, target.port)
    if not addresses:
        raise Refused(f"host {target.host!r} has no address")
    if not allow_private:
        private = [str(a) for a in addresses if not _public(a)]
        if private:
            raise Refused(
                f"host {target.host!r} resolves to a non-public address ({private[0]}); "
                "set CREWGATE_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
    return Target(target.scheme, target.host, target.port, target.path, str(addresses[0]))


async def _lookup(host: str, port: int) -> list[IpAddress]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise LookupFailed(f"host {host!r} could not be resolved: {exc}") from None
    seen: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen
