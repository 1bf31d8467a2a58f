"""Counting failed sign-ins per account and per client address, in the shared database.

Counts live in the database (not in process memory), so every API process sees the same numbers:
an attacker gains nothing by spreading attempts over processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, case, delete, literal, update
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


async def reserve(
    session: AsyncSession, settings: Settings, keys: list[ThrottleKey], now: datetime
) -> int | None:
    """Count this attempt on every key before checking anything, atomically (an upsert returning the
    new count), so concurrent attempts cannot all slip under the limit. None when every key is within
    its limit; else the seconds until the tightest window ends. A success gives its count back
    (`release`), so only failures use up the allowance."""
    table: Table = LoginFailureWindow.__table__  # type: ignore[attr-defined]
    window = timedelta(seconds=settings.login_failure_window_seconds)
    expired = table.c.window_started_at <= now - window
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    waits: list[float] = []
    for key in keys:
        statement = (
            insert(table)
            .values(key=key.key, window_started_at=now, failures=1)
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
        failures, started = (await session.execute(statement)).one()
        started = UTCDateTime().process_result_value(started, session.get_bind().dialect) or now
        if failures > key.limit:
            waits.append((started + window - now).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None


async def release(session: AsyncSession, key: ThrottleKey) -> None:
    """Give back the attempt `reserve` counted, for an attempt that succeeded."""
    await session.execute(
        update(LoginFailureWindow)
        .where(col(LoginFailureWindow.key) == key.key, col(LoginFailureWindow.failures) > 0)
        .values(failures=col(LoginFailureWindow.failures) - 1)
    )


async def clear(session: AsyncSession, key: ThrottleKey) -> None:
    await session.execute(delete(LoginFailureWindow).where(col(LoginFailureWindow.key) == key.key))
