"""Waking delivery workers when an outbox event commits, so urgent alerts leave at once.

In-process: listeners registered here are called right after the commit. Across processes on
PostgreSQL: a NOTIFY sent in the writing transaction (PostgreSQL delivers it only on commit) reaches
every worker that LISTENs. Polling remains the safety net either way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

logger = logging.getLogger("symptrack.wakeup")

CHANNEL = "symptrack_outbox"
_PENDING = "outbox_written"
_listeners: list[Callable[[], None]] = []


def add_listener(callback: Callable[[], None]) -> None:
    _listeners.append(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    with contextlib.suppress(ValueError):
        _listeners.remove(callback)


async def announce(session: AsyncSession) -> None:
    """Called by whoever writes deliveries, inside the transaction."""
    session.info[_PENDING] = True
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"NOTIFY {CHANNEL}"))


def after_commit(session: AsyncSession) -> None:
    """Called by the unit of work once the commit succeeded."""
    if session.info.pop(_PENDING, False):
        for callback in list(_listeners):
            callback()


def wake_here() -> None:
    """Wake this process's workers now, for work that nothing committed: a finished send frees a
    slot for a delivery held back (every slot taken, or its endpoint's share in flight)."""
    for callback in list(_listeners):
        callback()


@contextlib.asynccontextmanager
async def postgres_listener(engine: AsyncEngine, callback: Callable[[], None]) -> AsyncIterator[None]:
    """LISTEN on a connection of its own for as long as the block runs (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with listening(engine, CHANNEL, lambda _payload: callback()) as listens:
        if not listens:  # a worker without LISTEN still polls; say so and go on
            logger.warning("LISTEN %s failed; the worker falls back to polling", CHANNEL)
        yield


@contextlib.asynccontextmanager
async def listening(
    engine: AsyncEngine,
    channel: str,
    on_payload: Callable[[str], None],
    on_lost: Callable[[], None] | None = None,
) -> AsyncIterator[bool]:
    """LISTEN to `channel` on a PostgreSQL connection of its own while the block runs; yields whether
    it listens. `on_lost` is called if that connection ends before the block does."""

    def on_notify(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        on_payload(payload)

    def on_terminated(_connection: Any) -> None:
        if on_lost is not None:
            on_lost()

    connection: AsyncConnection | None = None
    try:
        connection = await engine.connect()
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.add_listener(channel, on_notify)
        driver.add_termination_listener(on_terminated)
    except Exception:
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
        connection = None
    if connection is None:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(Exception):
            driver.remove_termination_listener(on_terminated)
            await driver.remove_listener(channel, on_notify)
        with contextlib.suppress(Exception):  # already gone if the server ended it
            await connection.close()
