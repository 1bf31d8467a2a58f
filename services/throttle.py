"""Counting failed sign-ins per account and per client address, in the shared database.

Counts live in the database (not in process memory), so every API process sees the same numbers:
an attacker gains nothing by spreading attempts over processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, case, delete, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.auth import LoginFailureWindow
from models.base import UTCDateTime
from services.settings import Settings
from services.tokens import keyed_hash


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    limit: int


def sign_in_keys(settings: Settings, email: str, address: str | None) -> list[ThrottleKey]:
    keys = [ThrottleKey("account:" + keyed_hash(settings, email), settings.login_max_failures_per_account)]
    if address:
        keys.append(
            ThrottleKey("address:" + keyed_hash(settings, address), settings.login_max_failures_per_address)
        )
    return keys


async def seconds_until_allowed(
    session: AsyncSession, settings: Settings, keys: list[ThrottleKey], now: datetime
) -> int | None:
    """None when every key is under its limit; else how long until the tightest window ends."""
    window = timedelta(seconds=settings.login_failure_window_seconds)
    limits = {k.key: k.limit for k in keys}
    rows = await session.execute(
        select(LoginFailureWindow).where(col(LoginFailureWindow.key).in_(list(limits)))
    )
    waits = [
        (row.window_started_at + window - now).total_seconds()
        for row in rows.scalars()
        if row.failures >= limits[row.key] and row.window_started_at + window > now
    ]
    return math.ceil(max(waits)) if waits else None


async def record_failure(
    session: AsyncSession, settings: Settings, keys: list[ThrottleKey], now: datetime
) -> None:
    """Count one failure on each key, atomically (an upsert), starting a new window when the old one ended."""
    table: Table = LoginFailureWindow.__table__  # type: ignore[attr-defined]
    cutoff = now - timedelta(seconds=settings.login_failure_window_seconds)
    expired = table.c.window_started_at <= cutoff
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for key in keys:
        statement = insert(table).values(key=key.key, window_started_at=now, failures=1)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((expired, 1), else_=table.c.failures + 1),
                "window_started_at": case(
                    (expired, literal(now, UTCDateTime())), else_=table.c.window_started_at
                ),
            },
        )
        await session.execute(statement)


async def clear(session: AsyncSession, key: ThrottleKey) -> None:
    await session.execute(delete(LoginFailureWindow).where(col(LoginFailureWindow.key) == key.key))
