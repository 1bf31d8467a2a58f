"""Recent callers, kept a few seconds so that a request is authenticated without a query.

What a token family stands for (not revoked, the user active, their role, organization, patient id,
name and email) is read from the database once and kept for SYMPTRACK_AUTH_CACHE_SECONDS. Whatever
ends a session or changes what is kept is announced with its transaction: after the commit to every
cache of this process, and on PostgreSQL by a NOTIFY sent in the same transaction (PostgreSQL
delivers it only on commit) to every other API process, which drops the entry when it hears it. The
TTL bounds the staleness if a notification is ever missed. A process that loses its LISTEN connection
forgets what it kept and stops caching until it listens again (it reconnects with backoff), then starts
afresh: notices sent meanwhile were missed. Only successes are kept: a revoked or unknown family is
asked about each time.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.accounts.access import Caller
from services.accounts.token_cache import TokenCache
from services.database import listener_connection
from services.platform import wakeup

CHANNEL = "symptrack_auth"
_PENDING = "caller_cache_invalidations"
# A family's entry, or every entry of a user (their name changed, they were deactivated).
FAMILY = "family"
USER = "user"


@dataclass(frozen=True)
class _Entry:
    caller: Caller
    expires_at: float  # time.monotonic()


class CallerCache:
    """One process's callers, by token family. Not shared between threads: one event loop uses it."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.caching = ttl_seconds > 0
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        # Bumped by every invalidation: a reader that began before one may not store what it read,
        # which may predate the change it announces.
        self.generation = 0
        self.invalidations_heard = 0
        # On PostgreSQL, the LISTEN for other processes' notices (`listener.up`: a metric).
        self.listener: wakeup.Listener | None = None
        # The app's verified tokens: emptied by the same notices, so none outlives its session.
        self.tokens = TokenCache()

    def get(self, family_id: uuid.UUID, user_id: uuid.UUID) -> Caller | None:
        entry = self._entries.get(family_id)
        if entry is None:
            return None
        if entry.expires_at <= time.monotonic() or entry.caller.user_id != user_id:
            del self._entries[family_id]
            return None
        return entry.caller

    def put(self, caller: Caller, read_at_generation: int) -> None:
        if not self.caching or read_at_generation != self.generation:
            return
        self._entries[caller.family_id] = _Entry(caller, time.monotonic() + self.ttl_seconds)
        self._entries.move_to_end(caller.family_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, message: str) -> None:
        """`family:<id>` or `user:<id>`; anything else empties the cache."""
        self.generation += 1
        self.invalidations_heard += 1
        kind, _, value = message.partition(":")
        try:
            key = uuid.UUID(value)
        except ValueError:
            kind = ""
        if kind == FAMILY:
            self._entries.pop(key, None)
            self.tokens.forget_family(key)
        elif kind == USER:
            for family_id in [f for f, e in self._entries.items() if e.caller.user_id == key]:
                del self._entries[family_id]
            self.tokens.forget_user(key)
        else:
            self._entries.clear()
            self.tokens.clear()

    def stop_caching(self) -> None:
        """Without notifications nothing kept can be trusted: every request asks the database."""
        self.caching = False
        self.generation += 1
        self._entries.clear()
        self.tokens.clear()

    def resume_caching(self) -> None:
        """Listening again: start afresh (what was read before may predate a notice missed meanwhile)."""
        self.generation += 1
        self._entries.clear()
        self.tokens.clear()
        self.caching = self.ttl_seconds > 0

    def __len__(self) -> int:
        return len(self._entries)


# The caches of this process's apps (one in production; tests run several), told after each commit.
_caches: list[CallerCache] = []


async def announce(session: AsyncSession, kind: str, key: uuid.UUID) -> None:
    """Called inside the transaction that revokes a family or changes a user: every process drops
    what it kept once (and only once) the transaction commits."""
    message = f"{kind}:{key}"
    pending: list[str] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session.sync_session, "after_commit", _after_commit, once=True)
    pending.append(message)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :message)"), {"channel": CHANNEL, "message": message}
        )


def _after_commit(sync_session: Any) -> None:
    for message in sync_session.info.pop(_PENDING, []):
        for cache in list(_caches):
            cache.invalidate(message)


@contextlib.asynccontextmanager
async def serving(engine: AsyncEngine, ttl_seconds: float) -> AsyncIterator[CallerCache]:
    """A cache for one app, told of this process's commits and, on PostgreSQL, of every other's: it
    caches only while it listens."""
    cache = CallerCache(ttl_seconds)
    _caches.append(cache)
    try:
        if engine.dialect.name != "postgresql" or not cache.caching:
            yield cache
            return
        cache.stop_caching()  # until the LISTEN is up
        async with wakeup.listening(
            functools.partial(listener_connection, engine, "symptrack listen auth"),
            CHANNEL,
            cache.invalidate,
            on_up=cache.resume_caching,
            on_down=cache.stop_caching,
            meanwhile="callers are not cached meanwhile",
        ) as cache.listener:
            yield cache
    finally:
        cache.listener = None
        _caches.remove(cache)
