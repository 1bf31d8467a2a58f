"""Instants survive both databases as UTC; naive datetimes are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from models.accounts import Organization
from services.database import create_engine, create_session_factory, session_scope
from services.settings import Settings


async def test_aware_instants_round_trip_as_utc(settings: Settings) -> None:
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    new_york_winter = timezone(timedelta(hours=-5))
    written = datetime(2026, 3, 8, 1, 59, 30, 123456, tzinfo=new_york_winter)
    try:
        async with session_scope(factory) as session:
            session.add(Organization(name="Clinic", created_at=written))
        async with session_scope(factory) as session:
            stored = (await session.execute(select(Organization))).scalar_one()
        assert stored.created_at == written
        assert stored.created_at.tzinfo == UTC
        assert stored.created_at.hour == 6
    finally:
        await engine.dispose()


async def test_naive_datetimes_are_refused(settings: Settings) -> None:
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    try:
        with pytest.raises(StatementError, match="naive datetime"):
            async with session_scope(factory) as session:
                session.add(Organization(name="Clinic", created_at=datetime(2026, 1, 1, 12, 0)))
                await session.flush()
        async with session_scope(factory) as session:
            assert (await session.execute(select(Organization))).first() is None
    finally:
        await engine.dispose()
