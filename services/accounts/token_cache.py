"""Access tokens whose signature and claims were verified once, kept until the token expires.

PyJWT's decode costs tens of microseconds per request (it parses, re-checks the key's format and
verifies the HMAC every time); a phone sends the same token for its whole lifetime. A token is the key
of its entry, byte for byte: a changed token (a tampered signature or payload) is another key and is
verified afresh, and only tokens that passed are kept. An entry says who the token names, not whether
that session still stands: the caller cache (or the database) still answers that for every request.
Revocations empty the entries of the family or user all the same (caller_cache.CallerCache.invalidate),
so nothing kept outlives what it stood for. Bounded: the oldest entries go first (tokens all live
alike, so they are also the first to expire).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

from services.accounts.tokens import AccessClaims, decode_access_token
from services.settings import Settings

# Phones with a live token in one process; beyond it the oldest are verified again when they return.
MAX_TOKENS = 10_000


class TokenCache:
    """One app's verified tokens. Not shared between threads: one event loop uses it."""

    def __init__(self, max_entries: int = MAX_TOKENS) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, AccessClaims] = OrderedDict()

    def get(self, token: str) -> AccessClaims | None:
        claims = self._entries.get(token)
        if claims is None:
            return None
        # PyJWT refuses a token from its `exp` on; so does the cache, by the same clock.
        if claims.expires_at <= time.time():
            del self._entries[token]
            return None
        return claims

    def put(self, token: str, claims: AccessClaims) -> None:
        self._entries[token] = claims
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget_family(self, family_id: uuid.UUID) -> None:
        for token in [t for t, c in self._entries.items() if c.family_id == family_id]:
            del self._entries[token]

    def forget_user(self, user_id: uuid.UUID) -> None:
        for token in [t for t, c in self._entries.items() if c.user_id == user_id]:
            del self._entries[token]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries


def verified_claims(settings: Settings, token: str, cache: TokenCache | None) -> AccessClaims:
    """The claims of a valid, unexpired access token signed by us (else 401), verified once per token."""
    if cache is not None and (known := cache.get(token)) is not None:
        return known
    claims = decode_access_token(settings, token)
    if cache is not None:
        cache.put(token, claims)
    return claims
