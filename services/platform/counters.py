"""Windowed counters shared by every API process: the database by default, Redis when configured.

Used for sign-in throttling and request rate limits. A hit is one atomic operation that returns the
new count (an upsert with RETURNING, or INCR), so concurrent requests can't all slip under a limit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, case, delete, literal, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.auth import LoginFailureWindow
from models.base import UTCDateTime


class Counters(Protocol):
    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        """Count one on `key`; the count within the current window and the seconds it has left."""

    async def give_back(self, key: str) -> None:
        """Undo one hit (an attempt that turned out to be fine)."""

    async def clear(self, key: str) -> None: ...


class DatabaseCounters:
    """Counters in the `login_failure_window` table, inside the given session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        table: Table = LoginFailureWindow.__table__  # type: ignore[attr-defined]
        window = timedelta(seconds=window_seconds)
        expired = table.c.window_started_at <= now - window
        dialect = self.session.get_bind().dialect
        insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(table)
            .values(key=key, window_started_at=now, failures=1)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "failures": case((expired, 1), else_=table.c.failures + 1),
                    "window_started_at": case(
                        (expired, literal(now, UTCDateTime())), else_=table.c.window_started_at
                    ),
                },
            )
            .returning(table.c.failures, table.c.window_started_at)
        )
        count, started = (await self.session.execute(statement)).one()
        started = UTCDateTime().process_result_value(started, dialect) or now
        return int(count), max(1, math.ceil((started + window - now).total_seconds()))

    async def give_back(self, key: str) -> None:
        await self.session.execute(
            update(LoginFailureWindow)
            .where(col(LoginFailureWindow.key) == key, col(LoginFailureWindow.failures) > 0)
            .values(failures=col(LoginFailureWindow.failures) - 1)
        )

    async def clear(self, key: str) -> None:
        await self.session.execute(delete(LoginFailureWindow).where(col(LoginFailureWindow.key) == key))


class RedisCounters:
    """Counters in Redis: INCR on a key that expires with its window."""

    PREFIX = "symptrack:counter:"

    def __init__(self, client: Any) -> None:
        self.client = client

    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        name = self.PREFIX + key
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=window_seconds, nx=True)
            pipe.incr(name)
            pipe.ttl(name)
            _, count, ttl = await pipe.execute()
        return int(count), max(1, int(ttl))

    async def give_back(self, key: str) -> None:
        name = self.PREFIX + key
        # Only while the window lives: never create a key without an expiry.
        script = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"
        await self.client.eval(script, 1, name)

    async def clear(self, key: str) -> None:
        await self.client.delete(self.PREFIX + key)


def counters_for(session: AsyncSession, redis: Any | None) -> Counters:
    return RedisCounters(redis) if redis is not None else DatabaseCounters(session)
