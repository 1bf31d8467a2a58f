"""Which webhook URLs we may call: https only, and never our own network (SSRF), unless the operator's
settings allow it. Checked when an endpoint is saved and again before every send, since a name can
point somewhere else tomorrow."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import anyio

from services.settings import Settings


class UnsafeUrl(ValueError):
    """A URL we refuse to call; the message says why, without echoing anything resolved."""


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


async def check_url(url: str, settings: Settings) -> None:
    """Raises UnsafeUrl for a URL we must not call. Resolves the host name (off the event loop)."""
    host = check_url_form(url, settings)
    if settings.webhook_allow_private_networks:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await anyio.to_thread.run_sync(
                lambda: socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            )
        except OSError as exc:
            raise UnsafeUrl("the host name does not resolve") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or any(_refused(a) for a in addresses):
        raise UnsafeUrl("must not point to a loopback, private, link-local or reserved address")
