"""Readiness: the database answers and is at the migration head; Redis answers, when configured."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.counters import Counters, RedisCounters
from services.platform.migrations import database_revisions, head_revisions, known_revisions
from services.settings import Settings


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


async def check_readiness(
    engine: AsyncEngine, settings: Settings, counters: Counters | None = None
) -> Readiness:
    """`counters`: the app's; Redis ones are asked too (within SYMPTRACK_REDIS_TIMEOUT_SECONDS), since
    sign-ins answer 503 while Redis is down."""
    redis = counters if isinstance(counters, RedisCounters) else None
    database, redis_ok = await asyncio.gather(_check_database(engine, settings), _check_redis(redis))
    if redis_ok is not None:
        database.checks["redis"] = "ok" if redis_ok else "unreachable"
        database.ready = database.ready and redis_ok
    return database


async def _check_redis(redis: RedisCounters | None) -> bool | None:
    return None if redis is None else await redis.ping()


async def _check_database(engine: AsyncEngine, settings: Settings) -> Readiness:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach it means not ready; the reason stays in our logs
        return Readiness(False, {"database": "unreachable", "migrations": "unknown"})
    current = await database_revisions(engine)
    if current == head_revisions(settings.migrations_dir):
        return Readiness(True, {"database": "ok", "migrations": "ok"})
    if current and not current <= known_revisions(settings.migrations_dir):
        # A newer release migrated it (a release migrates before its processes replace these): this
        # one keeps serving until replaced, since migrations add and never take away what it uses
        # (docs/PRODUCTION.md, releases).
        return Readiness(True, {"database": "ok", "migrations": "ahead"})
    state = "not migrated" if current is None else "not at head"
    return Readiness(False, {"database": "ok", "migrations": state})
