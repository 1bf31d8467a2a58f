"""Which webhook URLs we may call: https only, and never our own network (SSRF), unless the operator's
settings allow it. Checked when an endpoint is saved and again before every send, since a name can
point somewhere else tomorrow. A send connects to the very address it checked (`pinned_target`), so a
name that answers differently a second later (DNS rebinding) cannot lead the connection elsewhere."""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
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


class MalformedUrl(UnsafeUrl):
    """A URL no request can be built from, whatever the network answers: refused when saved, and a
    delivery found holding one (saved before this check) is dead at once instead of retried."""


MAX_URL_LENGTH = 2000
# A host name's labels once IDNA-encoded (underscores too: some internal names carry them).
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")


def _port_text(netloc: str) -> str | None:
    """The port as written after the host (None when there is none), without trusting int()."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        rest = hostport.partition("]")[2]
        return rest[1:] if rest.startswith(":") else (rest or None)
    return hostport.partition(":")[2] if ":" in hostport else None


def check_url_form(url: str, settings: Settings) -> str:
    """The URL's form alone: raises MalformedUrl when no request can be built from it."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # unbalanced or misused brackets: "https://[::1/", "https://[1.2.3.4]/"
        raise MalformedUrl("must be a valid URL") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise MalformedUrl("must be an absolute https URL")
    port = _port_text(parts.netloc)
    if port is not None and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
        raise MalformedUrl("the port must be a number from 1 to 65535")
    if parts.username or parts.password:
        raise MalformedUrl("must not carry credentials")
    if parts.scheme == "http" and not settings.webhook_allow_http:
        raise UnsafeUrl("must use https")
    return parts.hostname


def check_url_text(url: str) -> None:
    """What we refuse to store though a client might send it somehow (when an endpoint is saved)."""
    if len(url) > MAX_URL_LENGTH:
        raise MalformedUrl(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp") for ch in url):
        raise MalformedUrl("must not contain spaces or control characters")
    # Never sent on the wire: the receiver would be called at another URL than the one saved.
    if "#" in url:
        raise MalformedUrl("must not have a fragment (#)")


def _check_host_syntax(parsed: httpx.URL) -> None:
    host = parsed.raw_host.decode("ascii")
    if ":" in host:  # written in brackets: an IPv6 address, without a zone (meaningless to a receiver)
        try:
            if "%" in host:
                raise ValueError("a zone")
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise MalformedUrl("the host must be a name or an IP address") from exc
        return
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise MalformedUrl("the host must be a name or an IP address")


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
        raise MalformedUrl("must be a valid URL") from exc
    if not parsed.raw_host:
        raise MalformedUrl("must be an absolute https URL")
    return parsed


async def check_url(url: str, settings: Settings) -> None:
    """Raises UnsafeUrl for a URL we must not call (when an endpoint is saved)."""
    check_url_text(url)
    parsed = _parsed(url, settings)
    _check_host_syntax(parsed)
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
