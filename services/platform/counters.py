"""Windowed counters for sign-in throttling and request rate limits: in this process's memory by
default, in Redis when `SYMPTRACK_REDIS_URL` is set (then every API process shares them).

A hit returns the new count at once (one dictionary update, or one Redis transaction), so concurrent
requests can't all slip under a limit. Counters never touch the database: they are outside every
request's unit of work, and a failed request's attempt stays counted without keeping its writes.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Protocol


class Counters(Protocol):
    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        """Count one on `key`; the count within the current window and the seconds it has left."""

    async def give_back(self, key: str) -> None:
        """Undo one hit (an attempt that turned out to be fine)."""

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
    """Counters in Redis: INCR on a key that expires with its window."""

    def __init__(self, client: Any, key_prefix: str = "symptrack:") -> None:
        self.client = client
        self.prefix = key_prefix + "counter:"

    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        name = self.prefix + key
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=window_seconds, nx=True)
            pipe.incr(name)
            pipe.ttl(name)
            _, count, ttl = await pipe.execute()
        return int(count), max(1, int(ttl))

    async def give_back(self, key: str) -> None:
        name = self.prefix + key
        # Only while the window lives: never create a key without an expiry.
        script = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"
        await self.client.eval(script, 1, name)

    async def clear(self, key: str) -> None:
        await self.client.delete(self.prefix + key)
