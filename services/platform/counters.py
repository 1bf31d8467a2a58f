"""Windowed counters for sign-in throttling and request rate limits: in this process's memory by
default, in Redis when `SYMPTRACK_REDIS_URL` is set (then every API process shares them).

A hit returns the new count at once (one dictionary update, or one Redis transaction), so concurrent
requests can't all slip under a limit. Counters never touch the database: they are outside every
request's unit of work, and a failed request's attempt stays counted without keeping its writes.

Redis may be refused or hang: every call then fails within SYMPTRACK_REDIS_TIMEOUT_SECONDS with
`CountersUnavailable` (a 503), and for a moment after it at once, without asking (see RedisCounters).
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from services.errors import ServiceUnavailable
from services.platform.tracebacks import exception_name
from services.settings import Settings

logger = logging.getLogger("symptrack.counters")
T = TypeVar("T")


class CountersUnavailable(ServiceUnavailable):
    """The shared counters (Redis) did not answer: the request is refused with 503 and Retry-After."""

    def __init__(self) -> None:
        super().__init__("A service this request needs is not available; try again shortly.")


def redis_client(settings: Settings) -> Any:
    """A client that gives up within the timeout and never retries by itself: a retry would make a
    hung Redis cost a request many timeouts, and a hit retried could be counted twice."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    assert settings.redis_url is not None
    timeout = settings.redis_timeout_seconds
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


class Counters(Protocol):
    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        """Count one on `key`; the count within the current window and the seconds it has left."""

    async def give_back(self, key: str) -> None:
        """Undo one hit (an attempt that turned out to be fine, or failed for another reason than the
        caller's). Never fails."""

    async def clear(self, key: str) -> None: ...


class MemoryCounters:
    """Counters of one process. The event loop runs one hit at a time, so no lock is needed."""

    # Past this many keys, windows that have ended are swept out, so a flood of distinct addresses or
    # tokens can't grow the table without bound.
    SWEEP_ABOVE = 10_000

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, datetime]] = {}

    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        count, ends = self._windows.get(key, (0, now))
        if ends <= now:
            count, ends = 0, now + timedelta(seconds=window_seconds)
        self._windows[key] = (count + 1, ends)
        if len(self._windows) > self.SWEEP_ABOVE:
            self._sweep(now)
        return count + 1, max(1, math.ceil((ends - now).total_seconds()))

    async def give_back(self, key: str) -> None:
        if (window := self._windows.get(key)) is not None and window[0] > 0:
            self._windows[key] = (window[0] - 1, window[1])

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    def _sweep(self, now: datetime) -> None:
        for key in [k for k, (_, ends) in self._windows.items() if ends <= now]:
            del self._windows[key]


class RedisCounters:
    """Counters in Redis: INCR on a key that expires with its window.

    When Redis fails (refused, or no answer within the client's timeout) it is taken as down for
    DOWN_SECONDS: calls fail at once instead of each waiting out the timeout. After that, a PING
    (harmless if a hung Redis runs it late) tells whether it is back before a counter is touched again.

    A hit that timed out may still be counted: a hung Redis runs what was sent once it resumes. Such
    hits, and give-backs Redis could not take, are owed and given back once Redis answers again, so a
    request that failed because Redis did is not left counted against the caller (this process only
    remembers them; at most the requests in flight when Redis failed).
    """

    DOWN_SECONDS = 1.0
    MAX_OWED = 10_000

    def __init__(self, client: Any, key_prefix: str = "symptrack:") -> None:
        self.client = client
        self.prefix = key_prefix + "counter:"
        self.available = True
        self._ask_again_at = 0.0
        self._probing = False
        self._owed: collections.deque[str] = collections.deque(maxlen=self.MAX_OWED)

    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        name = self.prefix + key

        async def transaction() -> tuple[int, int]:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, ex=window_seconds, nx=True)
                pipe.incr(name)
                pipe.ttl(name)
                _, count, ttl = await pipe.execute()
            return int(count), max(1, int(ttl))

        return await self._call(transaction, uncertain=key)

    async def give_back(self, key: str) -> None:
        """Never fails: what Redis can't take now is given back once it answers again."""
        try:
            await self._call(lambda: self._decrement(key))
        except CountersUnavailable:
            self._owed.append(key)

    async def clear(self, key: str) -> None:
        try:
            await self._call(lambda: self.client.delete(self.prefix + key))
        except CountersUnavailable:
            self._owed.append(key)  # at least this attempt's own hit

    async def _decrement(self, key: str) -> None:
        # Only while the window lives: never create a key without an expiry.
        script = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"
        await self.client.eval(script, 1, self.prefix + key)

    async def ping(self) -> bool:
        """Whether Redis answers now (readiness asks this); settles what is owed when it does."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False
        if not self.available:
            self.available = True
            logger.warning("Redis answers again: sign-ins and rate limits use it again")
        while self._owed:
            key = self._owed.popleft()
            try:
                await self._decrement(key)
            except (RedisError, OSError) as exc:
                self._owed.appendleft(key)
                self._failed(exc)
                return False
        return True

    async def _call(self, work: Callable[[], Awaitable[T]], uncertain: str | None = None) -> T:
        if not self.available:
            if self._probing or time.monotonic() < self._ask_again_at:
                raise CountersUnavailable
            self._probing = True  # one request asks; the others are refused meanwhile
            try:
                if not await self.ping():
                    raise CountersUnavailable
            finally:
                self._probing = False
        try:
            return await work()
        except (RedisError, OSError) as exc:
            if uncertain is not None and isinstance(exc, RedisTimeout):
                self._owed.append(uncertain)  # sent, maybe run later: give it back then
            self._failed(exc)
            raise CountersUnavailable from None

    def _failed(self, exc: BaseException) -> None:
        self._ask_again_at = time.monotonic() + self.DOWN_SECONDS
        if self.available:
            self.available = False
            # The type only: a Redis error can carry the key, and a key a hash of an email.
            logger.error(
                "Redis is unavailable (%s): sign-ins answer 503 until it is back", exception_name(exc)
            )
