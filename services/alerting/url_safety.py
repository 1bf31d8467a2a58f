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


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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
