"""The background worker: runs each registered job in turn until asked to stop.

`symptrack serve` runs one in-process; `symptrack worker` runs it alone, any number of times, on any
machine that reaches the database. Jobs must therefore be safe to run concurrently with themselves:
they claim their work in the database (leases, SKIP LOCKED), never in process memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.database import listener_connection
from services.platform import wakeup
from services.platform.process_metrics import JOB_FAILURES, JOB_ROUND_SECONDS
from services.platform.tracebacks import exception_name, log_exception
from services.settings import Settings

logger = logging.getLogger("symptrack.worker")

# A job does one bounded round of work and returns how many items it handled.
Job = Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[int]]


@dataclass(frozen=True)
class RegisteredJob:
    name: str
    run: Job
    interval_seconds: float
    # Runs at once when new work is committed (webhook delivery), not only at its interval.
    wakeable: bool = True
    # Called once when the worker stops, for work a run left going on (webhook sends still in flight).
    drain: Callable[[], Awaitable[None]] | None = None


class WakeUp:
    """A wake-up every wakeable job hears, even one that is busy when it comes."""

    def __init__(self) -> None:
        self.events: list[asyncio.Event] = []

    def listener(self) -> asyncio.Event:
        event = asyncio.Event()
        self.events.append(event)
        return event

    def set(self) -> None:
        for event in self.events:
            event.set()


class Worker:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        jobs: list[RegisteredJob],
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.jobs = list(jobs)
        self.stopping = asyncio.Event()
        # Set by whoever commits new work, so it is picked up at once rather than at the next poll.
        self.wake = WakeUp()
        # NOTIFY from other processes, while running on PostgreSQL: `listener.up` says if it listens.
        self.listener: wakeup.Listener | None = None

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    async def run(self) -> None:
        logger.info("worker started with jobs: %s", ", ".join(j.name for j in self.jobs) or "none")
        engine = self.session_factory.kw.get("bind")
        wakeup.add_listener(self.wake.set)
        try:
            if engine is None:
                await self._loop()
            else:
                # Its own connection, outside the pool: a pool of one still serves the jobs.
                connect = functools.partial(listener_connection, engine, "symptrack listen outbox")
                async with wakeup.postgres_listener(engine, connect, self.wake.set) as self.listener:
                    await self._loop()
        finally:
            self.listener = None
            wakeup.remove_listener(self.wake.set)
        logger.info("worker stopped")

    async def _loop(self) -> None:
        # Each job runs in a loop of its own: a long periodic pass (time-based flag rules over every
        # patient) never holds up the delivery of an urgent alert.
        await asyncio.gather(*(self._job_loop(job) for job in self.jobs))

    async def _job_loop(self, job: RegisteredJob) -> None:
        # A wake-up that comes while the job runs stays set, so the job runs again at once.
        woken = self.wake.listener() if job.wakeable else self.stopping
        try:
            while not self.stopping.is_set():
                await self._run_once(job)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), timeout=job.interval_seconds)
                if woken is not self.stopping:
                    woken.clear()
        finally:
            if job.drain is not None:
                await job.drain()

    async def _run_once(self, job: RegisteredJob) -> None:
        started = time.perf_counter()
        try:
            await job.run(self.session_factory, self.settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # One failing round must not stop the worker; the job's work stays claimable.
            JOB_FAILURES.labels(job.name).inc()
            log_exception(logger, "job %s failed: %s", job.name, exception_name(exc), exc=exc)
        JOB_ROUND_SECONDS.labels(job.name).observe(time.perf_counter() - started)
        self._beat()

    def _beat(self) -> None:
        """Touch the heartbeat file after every round, so a health check can tell a worker that is
        stuck (or gone) from one that is working: the delivery job's rounds come every second."""
        if (path := self.settings.worker_heartbeat_file) is not None:
            with contextlib.suppress(OSError):  # a health check's problem, never the worker's
                path.touch()
