"""What one statement costs through each layer the app could use, on this machine: the same
one-row read by primary key, 2,000 times in a row on one connection, after a warm-up.

The API's requests are chains of such statements (see "Statements per request"), so this is the
price list for the write path's design: the ORM, SQLAlchemy Core, or asyncpg itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import select, text
from sqlmodel import col

from models.accounts import User
from services.database import create_engine, create_session_factory
from services.settings import Settings

ROUNDS = 2000
WARMUP = 200


async def _time(run: Callable[[], Awaitable[object]]) -> float:
    for _ in range(WARMUP):
        await run()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        await run()
    return (time.perf_counter() - started) / ROUNDS * 1e6


async def measure(settings: Settings, asyncpg_url: str, user_id: uuid.UUID) -> list[tuple[str, float]]:
    """Microseconds per statement, by layer."""
    engine = create_engine(settings)
    results: list[tuple[str, float]] = []
    try:
        async with create_session_factory(engine)() as session:
            results.append(
                (
                    "ORM: session.execute(select(User).where(...)), a new statement each time",
                    await _time(
                        lambda: session.execute(select(User).where(col(User.id) == user_id).limit(1))
                    ),
                )
            )
            results.append(
                (
                    "ORM: session.get(User, id, populate_existing=True)",
                    await _time(lambda: session.get(User, user_id, populate_existing=True)),
                )
            )
        by_id = select(User.__table__).where(User.__table__.c.id == user_id)  # type: ignore[attr-defined]
        async with engine.connect() as connection:
            results.append(
                (
                    "Core: connection.execute(select(table)), statement built once",
                    await _time(lambda: connection.execute(by_id)),
                )
            )
            query = text("SELECT * FROM user_account WHERE id = :id")
            results.append(
                (
                    "Core: connection.execute(text(...))",
                    await _time(lambda: connection.execute(query, {"id": user_id})),
                )
            )
    finally:
        await engine.dispose()
    raw = await asyncpg.connect(asyncpg_url)
    try:
        results.append(
            (
                "asyncpg: connection.fetchrow(...)",
                await _time(lambda: raw.fetchrow("SELECT * FROM user_account WHERE id = $1", user_id)),
            )
        )
    finally:
        await raw.close()
    return results


def markdown(results: list[tuple[str, float]]) -> str:
    lines = ["| layer | µs per statement |", "|---|---:|"]
    lines += [f"| {name} | {micros:,.0f} |" for name, micros in results]
    return "\n".join(lines)
