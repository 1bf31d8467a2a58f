"""Waking delivery workers when an outbox event commits, so urgent alerts leave at once.

In-process: listeners registered here are called right after the commit. Across processes on
PostgreSQL: a NOTIFY sent in the writing transaction (PostgreSQL delivers it only on commit) reaches
every worker that LISTENs. Polling remains the safety net either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.platform.tracebacks import exception_name, log_exception

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
async def postgres_listener(
    engine: AsyncEngine, connect: Callable[[], Awaitable[Any]], callback: Callable[[], None]
) -> AsyncIterator[Listener | None]:
    """LISTEN for committed outbox events on connections `connect` makes, while the block runs
    (PostgreSQL only; None elsewhere). Lost, it connects again with backoff; the worker polls
    meanwhile, and is woken when it is back (events committed meanwhile were not heard)."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    async with listening(
        connect, CHANNEL, lambda _payload: callback(), on_up=callback, meanwhile="the worker polls meanwhile"
    ) as listener:
        yield listener


# After a LISTEN connection is lost, the first attempt to connect again comes after about this long,
# then twice as long each time up to RECONNECT_MAX_SECONDS (with jitter, so the processes of a
# deployment don't all reconnect at once after a database restart).
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 15.0
# A LISTEN connection receives but never sends: asked this often whether it is still there, so one
# lost without a word (a network cut, no FIN) is found and replaced.
PING_EVERY_SECONDS = 10.0
PING_TIMEOUT_SECONDS = 5.0


class Listener:
    """LISTEN on `channel` on a connection of its own (made by `connect`) while `run` runs. When the
    connection is lost (a database restart, pg_terminate_backend, a network cut) it connects again
    with backoff and listens again. `up` says whether it listens now (a metric); `on_down` and `on_up`
    are told each change, and one log line says each."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        channel: str,
        on_payload: Callable[[str], None],
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[], None] | None = None,
        meanwhile: str = "",
    ) -> None:
        self.connect = connect
        self.channel = channel
        self.on_payload = on_payload
        self.on_up = on_up
        self.on_down = on_down
        self.meanwhile = meanwhile
        self.up: bool | None = None  # None until the first attempt
        self.tried = asyncio.Event()  # the first attempt is over, listening or not
        self._last_error = ""

    async def run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            try:
                if await self._listen_until_lost():
                    delay = RECONNECT_FIRST_SECONDS
            except Exception as exc:  # a callback failed: never stop listening for good
                log_exception(logger, "LISTEN %s: %s", self.channel, exception_name(exc), exc=exc)
                self._changed(False, exception_name(exc))
            await asyncio.sleep(random.uniform(delay / 2, delay))  # noqa: S311 (jitter, not a secret)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _listen_until_lost(self) -> bool:
        """Whether it listened at all (then the backoff starts afresh)."""
        connection = await self._listen()
        if connection is None:
            self._changed(False, self._last_error)
            return False
        try:
            self._changed(True, None)
            reason = await self._until_lost(connection)
        finally:
            await _close(connection)
        self._changed(False, reason)
        return True

    async def _listen(self) -> Any:
        connection = None
        try:
            connection = await self.connect()
            await connection.add_listener(self.channel, self._on_notify)
        except Exception as exc:  # the database is down or refuses: try again later
            self._last_error = exception_name(exc)
            if connection is not None:
                await _close(connection)
            return None
        return connection

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_payload(payload)

    async def _until_lost(self, connection: Any) -> str:
        """Returns why the connection is no longer usable."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), PING_EVERY_SECONDS)
            if lost.is_set() or connection.is_closed():
                return "connection closed"
            try:
                await asyncio.wait_for(connection.execute("SELECT 1"), PING_TIMEOUT_SECONDS)
            except Exception as exc:
                return exception_name(exc)

    def _changed(self, up: bool, reason: str | None) -> None:
        before, self.up = self.up, up
        self.tried.set()
        if up == before:
            return
        meanwhile = f": {self.meanwhile}" if self.meanwhile else ""
        if up and before is False:
            logger.warning("LISTEN %s is back", self.channel)
        elif not up and before is None:
            logger.warning("LISTEN %s failed (%s), retrying%s", self.channel, reason, meanwhile)
        elif not up:
            logger.warning("LISTEN %s connection lost (%s), reconnecting%s", self.channel, reason, meanwhile)
        callback = self.on_up if up else self.on_down
        if callback is not None:
            callback()


async def _close(connection: Any) -> None:
    try:
        await asyncio.wait_for(connection.close(), PING_TIMEOUT_SECONDS)
    except Exception:  # already gone, or hung: drop it without a goodbye
        connection.terminate()
    except BaseException:
        connection.terminate()
        raise


@contextlib.asynccontextmanager
async def listening(
    connect: Callable[[], Awaitable[Any]],
    channel: str,
    on_payload: Callable[[str], None],
    on_up: Callable[[], None] | None = None,
    on_down: Callable[[], None] | None = None,
    meanwhile: str = "",
) -> AsyncIterator[Listener]:
    """A Listener running while the block runs; the block starts once its first attempt is over."""
    listener = Listener(connect, channel, on_payload, on_up, on_down, meanwhile)
    task = asyncio.create_task(listener.run(), name=f"LISTEN {channel}")
    tried = asyncio.create_task(listener.tried.wait())
    await asyncio.wait({task, tried}, return_when=asyncio.FIRST_COMPLETED)
    tried.cancel()
    try:
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
