"""Counting sign-in attempts per account and per client address, in a store every API process
shares (services/counters.py): an attacker gains nothing by spreading attempts over processes.

A device that signed in to the account before (it shows its device token) is counted on its own
instead of on the account, as OWASP's "device cookies" have it: strangers' wrong guesses lock out
strangers, never the patient's phone; a device's own wrong guesses lock out that device only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from services.accounts.tokens import keyed_hash
from services.platform.counters import Counters, CountersUnavailable
from services.settings import Settings


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    limit: int


def address_key(address: str) -> str:
    """What one client's attempts are counted by: an IPv4 address as it is; an IPv6 address by its
    /64, the smallest block a provider hands one subscriber (RFC 6177), so an attacker can't spread
    guesses over the 2**64 addresses of their own network; an IPv4-mapped IPv6 address as IPv4.
    Anything that is not an address (a test client's name) is counted as it is."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])  # a zone id names no other client
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def sign_in_keys(
    settings: Settings, email: str, address: str | None, device_nonce: str | None = None
) -> list[ThrottleKey]:
    """The first key is whose failures this attempt counts as (the device's, else the account's);
    the address is counted for everyone."""
    if device_nonce is not None:
        first = ThrottleKey(
            "device:" + keyed_hash(settings, device_nonce), settings.login_max_failures_per_device
        )
    else:
        first = ThrottleKey("account:" + keyed_hash(settings, email), settings.login_max_failures_per_account)
    keys = [first]
    if address:
        keys.append(
            ThrottleKey(
                "address:" + keyed_hash(settings, address_key(address)),
                settings.login_max_failures_per_address,
            )
        )
    return keys


async def reserve(
    counters: Counters, settings: Settings, keys: list[ThrottleKey], now: datetime
) -> int | None:
    """Count this attempt on every key before checking anything, so concurrent attempts cannot all
    slip under the limit. None when every key is within its limit; else the seconds until the tightest
    window ends. A success gives its count back (`release`), so only failures use up the allowance.

    If the counters are unavailable (CountersUnavailable, a 503), the keys already counted are given
    back: an attempt that could not be checked is no failed sign-in."""
    waits = []
    counted: list[ThrottleKey] = []
    try:
        for key in keys:
            count, left = await counters.hit(key.key, settings.login_failure_window_seconds, now)
            counted.append(key)
            if count > key.limit:
                waits.append(left)
    except CountersUnavailable:
        await give_back(counters, counted)
        raise
    return max(waits) if waits else None


async def give_back(counters: Counters, keys: list[ThrottleKey]) -> None:
    """Undo a reservation whose attempt failed for a reason other than the password or code (the
    database or Redis failed): only real failures count against the caller."""
    for key in keys:
        await counters.give_back(key.key)


async def release(counters: Counters, key: ThrottleKey) -> None:
    await counters.give_back(key.key)


async def clear(counters: Counters, key: ThrottleKey) -> None:
    await counters.clear(key.key)
