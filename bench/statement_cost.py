"""What one statement costs through each layer the app could use, on this machine: the same
one-row read by primary key, 2,000 times in a row on one connection, after a warm-up.

The API's requests are chains of such statements (see "Statements per request"), so this is the
price list for the write path's design: the ORM, SQLAlchemy Core, or asyncpg itself.

Then what the lock of a dose's local day adds to its unit of work (services/flags/dose_day_lock.py,
issue 22: one more statement before the dose's own): the same read in a transaction of its own,
without and with the lock of a (patient, day) before it, uncontended (a new day each time). The
difference of the two is the lock's price on every dose; the dose scenario's rate includes it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.accounts import User
from services.database import create_engine, create_session_factory
from services.flags.dose_day_lock import lock_dose_days
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
        results += await _dose_day_lock(create_session_factory(engine), by_id)
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


async def _dose_day_lock(factory: async_sessionmaker[AsyncSession], read: Any) -> list[tuple[str, float]]:
    """A unit of work as the dose path runs it (a session, BEGIN, ..., COMMIT), without and with the lock
    of its day; the read stands in for the dose's one statement."""
    patient_id, days = uuid.uuid4(), iter(date(2000, 1, 1) + timedelta(days=n) for n in range(10**6))

    async def without_lock() -> None:
        async with factory() as session, session.begin():
            await session.execute(read)

    async def with_lock() -> None:
        async with factory() as session, session.begin():
            await lock_dose_days(session, [(patient_id, next(days))])
            await session.execute(read)

    return [
        (
            "Session: BEGIN, the read, COMMIT (a dose's unit of work, without its day's lock)",
            await _time(without_lock),
        ),
        ("Session: BEGIN, the day's lock, the read, COMMIT (with it)", await _time(with_lock)),
    ]


def markdown(results: list[tuple[str, float]]) -> str:
    lines = ["| layer | µs per statement (or unit of work, where it says) |", "|---|---:|"]
    lines += [f"| {name} | {micros:,.0f} |" for name, micros in results]
    return "\n".join(lines)
