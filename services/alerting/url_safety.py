"""Which webhook URLs we may call: https only, and never our own network (SSRF), unless the operator's
settings allow it. Checked when an endpoint is saved and again before every send, since a name can
point somewhere else tomorrow. A send connects to the very address it checked (`pinned_target`), so a
name that answers differently a second later (DNS rebinding) cannot lead the connection elsewhere."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx

from services.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """A URL we refuse to call; the message says why, without echoing anything resolved."""


@dataclass(frozen=True)
class PinnedTarget:
    """Where one send goes: `url` has the checked address in place of the host name; the name itself
    still goes in the Host header and, for https, in TLS SNI and the certificate check."""

    url: str
    host_header: str
    server_name: str | None  # None when the URL names an address, not a host


def check_url_form(url: str, settings: Settings) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrl("must be an absolute https URL")
    if parts.scheme == "http" and not settings.webhook_allow_http:
        raise UnsafeUrl("must use https")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry credentials")
    return parts.hostname


# NAT64 (RFC 6052): the well-known prefix carries the IPv4 address it translates to in its last 32
# bits; the local-use prefix (RFC 8215) only ever leads into the operator's own network.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE:
            return True
        # Mapped and NAT64 addresses are the IPv4 address they lead to, and are judged as it.
        if address.ipv4_mapped is not None:
            return _refused(address.ipv4_mapped)
        if address in _NAT64_WELL_KNOWN:
            return _refused(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        # 6to4 and Teredo tunnel to the IPv4 addresses they embed: refused when any of those is.
        tunnelled = [address.sixtofour] if address.sixtofour is not None else list(address.teredo or ())
        if any(_refused(embedded) for embedded in tunnelled):
            return True
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


async def resolve(host: str) -> list[IPAddress]:
    """Every address of `host` (an address itself, or a name resolved off the event loop): the one place
    a webhook host is looked up."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await anyio.to_thread.run_sync(
            lambda: socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        )
    except OSError as exc:
        raise UnsafeUrl("the host name does not resolve") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeUrl("the host name does not resolve")
    return addresses


def _check_addresses(addresses: list[IPAddress]) -> None:
    if any(_refused(a) for a in addresses):
        raise UnsafeUrl("must not point to a loopback, private, link-local or reserved address")


def _parsed(url: str, settings: Settings) -> httpx.URL:
    """The URL as httpx, which sends it, reads it (so the host we check is the host we call)."""
    check_url_form(url, settings)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeUrl("must be a valid URL") from exc
    if not parsed.raw_host:
        raise UnsafeUrl("must be an absolute https URL")
    return parsed


async def check_url(url: str, settings: Settings) -> None:
    """Raises UnsafeUrl for a URL we must not call (when an endpoint is saved)."""
    parsed = _parsed(url, settings)
    if settings.webhook_allow_private_networks:
        return
    _check_addresses(await resolve(parsed.raw_host.decode("ascii")))


async def pinned_target(url: str, settings: Settings) -> PinnedTarget:
    """For one send: resolve the host once, check every address, and pin the first (the resolver's
    preferred one). Raises UnsafeUrl. With private networks allowed (local setups, tests) nothing is
    refused, but the connection is pinned all the same."""
    parsed = _parsed(url, settings)
    host = parsed.raw_host.decode("ascii")
    addresses = await resolve(host)
    if not settings.webhook_allow_private_networks:
        _check_addresses(addresses)
    host_header = parsed.netloc.decode("ascii")
    if _is_address(host):  # the URL names an address: nothing to pin, no name to verify
        return PinnedTarget(str(parsed), host_header, None)
    return PinnedTarget(str(parsed.copy_with(host=str(addresses[0]))), host_header, host)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
