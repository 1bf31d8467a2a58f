"""The async engine and session factory, one per process.

SQLite is the embedded default (one file, WAL so readers don't block the writer, a busy timeout so a
second writer waits instead of failing); PostgreSQL through asyncpg in production.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.localtime import SQLITE_LOCAL_DATE, sqlite_local_date
from services.platform import wakeup
from services.platform.pool_metrics import MeteredPool
from services.settings import Settings

# Work registered by `after_rollback`, kept in session.info until the unit of work ends.
AFTER_ROLLBACK = "after_rollback"
AfterRollback = Callable[[AsyncSession], Awaitable[None]]
logger = logging.getLogger("symptrack.database")


def after_rollback(session: AsyncSession, work: AfterRollback) -> None:
    """Run `work` in a short transaction of its own if this unit of work rolls back: what a failed
    request must leave behind (its audit record, a revoked session), and nothing else of it."""
    session.info.setdefault(AFTER_ROLLBACK, []).append(work)


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
    # A request waits at most the pool timeout for a connection, and as long again for a new one to
    # be made (asyncpg's own default is 60 s): then 503 (api/errors.py), not a hang.
    engine = create_async_engine(
        url,
        poolclass=MeteredPool,  # counts checkouts waiting for a connection (/metrics)
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={"timeout": settings.db_pool_timeout_seconds},
        pool_recycle=1800,
        hide_parameters=True,
    )
    _ping_after_idle(engine)
    return engine


# A pooled connection that sat unused this long is checked before use (the server may have restarted
# or dropped it). A busy process reuses its connections within milliseconds and never pays for the
# check: for asyncpg it is three round trips (BEGIN, a query, ROLLBACK), more than a plain dose needs.
# A connection that dies while busy is caught by its failing statement instead (the request answers
# 503, and SQLAlchemy then replaces every connection of the pool made before that moment).
PING_AFTER_IDLE_SECONDS = 10.0
_CHECKED_IN_AT = "checked_in_at"


def _ping_after_idle(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool drops this connection and checks out another
            raise DisconnectionError(type(exc).__name__) from None
        if not alive:
            raise DisconnectionError("ping failed")


# What SQLAlchemy's asyncpg dialect takes for itself; the rest of its connect arguments are asyncpg's.
_DIALECT_ONLY_ARGUMENTS = (
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)
LISTEN_CONNECT_TIMEOUT_SECONDS = 5.0


async def listener_connection(engine: AsyncEngine, name: str) -> Any:
    """A driver connection (asyncpg) of its own, outside the pool, from the engine's URL: a LISTEN
    holds its connection for the life of the process, and taking it from the pool would leave a pool
    of one with nothing for requests. `name` shows as application_name in pg_stat_activity."""
    import asyncpg

    _args, params = engine.dialect.create_connect_args(engine.url)
    for argument in _DIALECT_ONLY_ARGUMENTS:
        params.pop(argument, None)
    server_settings = {**params.pop("server_settings", {}), "application_name": name}
    return await asyncpg.connect(
        **params, server_settings=server_settings, timeout=LISTEN_CONNECT_TIMEOUT_SECONDS
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the one commit at the end of a request,
    # without a lazy load (which async sessions cannot do).
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit once when the block ends normally, roll back on any error. After a
    rollback, the work registered with `after_rollback` runs, each in a transaction of its own."""
    async with unit_of_work(factory) as work:
        yield work.session


class UnitOfWork:
    """`session_scope`'s unit of work with its session made at first use: a request that runs no
    statement (a cached caller asking who they are) makes no session and checks out no connection."""

    __slots__ = ("_factory", "_session")

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._factory()
        return self._session

    @property
    def started(self) -> bool:
        return self._session is not None


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[UnitOfWork]:
    """`session_scope`, for a block that may need no session at all: commit once when the block ends
    normally, roll back on any error, then the `after_rollback` work; nothing when no session was made."""
    work = UnitOfWork(factory)
    try:
        yield work
        if (session := work._session) is not None:
            await session.commit()
            wakeup.after_commit(session)
    except Exception:
        if (session := work._session) is not None:
            await session.rollback()
            await _run_after_rollback(factory, session.info.pop(AFTER_ROLLBACK, []))
        raise
    except BaseException:  # cancelled: nothing more may be awaited safely
        if work._session is not None:
            await work._session.rollback()
        raise
    finally:
        if work._session is not None:
            await work._session.__aexit__(None, None, None)  # closes it even when cancelled


async def _run_after_rollback(factory: async_sessionmaker[AsyncSession], works: list[AfterRollback]) -> None:
    for work in works:
        try:
            async with factory() as session:
                await work(session)
                await session.commit()
        except Exception as exc:  # never hide the request's own error behind this one
            logger.error("work after a rollback failed: %s", type(exc).__name__)


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
        # A local date in a patient's zone, in SQL (the panel's adherence by the slot a dose is for).
        dbapi_connection.create_function(SQLITE_LOCAL_DATE, 2, sqlite_local_date, deterministic=True)
        # Take transactions into our own hands (the driver would open them lazily, and a read that
        # later writes could then fail with "database is locked" instead of waiting).
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers queue on busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
