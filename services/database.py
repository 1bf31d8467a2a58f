"""The async engine and session factory, one per process.

SQLite is the embedded default (one file, WAL so readers don't block the writer, a busy timeout so a
second writer waits instead of failing); PostgreSQL through asyncpg in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.errors import DomainError
from services.platform import wakeup
from services.settings import Settings

# Set in session.info by code that has already undone the failed part of a request (a rolled-back
# savepoint) and wants what remains, such as an audit record of the failure, to be committed.
KEEP_ON_ERROR = "keep_on_error"


def keep_on_error(session: AsyncSession) -> None:
    session.info[KEEP_ON_ERROR] = True


def create_engine(settings: Settings) -> AsyncEngine:
    # hide_parameters: a statement's error message never carries its parameters (patient data).
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        ensure_sqlite_folder(settings.database_url)
        engine = create_async_engine(
            url,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
            hide_parameters=True,
        )
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        hide_parameters=True,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the one commit at the end of a request,
    # without a lazy load (which async sessions cannot do).
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block ends normally, roll back on any error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
            wakeup.after_commit(session)
        except Exception as exc:
            keep = session.info.pop(KEEP_ON_ERROR, False) or (
                isinstance(exc, DomainError) and exc.keep_changes
            )
            await (session.commit() if keep else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise


def ensure_sqlite_folder(database_url: str) -> None:
    """SQLite creates the file but not its folder; make the folder so a fresh checkout just runs."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # Take transactions into our own hands (the driver would open them lazily, and a read that
        # later writes could then fail with "database is locked" instead of waiting).
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers queue on busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
