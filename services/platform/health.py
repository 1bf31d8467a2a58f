"""Readiness: the database answers and is at the migration head."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.migrations import database_revisions, head_revisions
from services.settings import Settings


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


async def check_readiness(engine: AsyncEngine, settings: Settings) -> Readiness:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach it means not ready; the reason stays in our logs
        return Readiness(False, {"database": "unreachable", "migrations": "unknown"})
    current = await database_revisions(engine)
    heads = head_revisions(settings.migrations_dir)
    if current != heads:
        state = "not migrated" if current is None else "not at head"
        return Readiness(False, {"database": "ok", "migrations": state})
    return Readiness(True, {"database": "ok", "migrations": "ok"})
