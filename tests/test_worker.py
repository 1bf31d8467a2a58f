"""The worker loop: runs its jobs, wakes at once when told, survives a failing job, stops cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.platform.worker import RegisteredJob, Worker
from services.settings import Settings


async def test_worker_runs_jobs_wakes_and_survives_failures(settings: Settings) -> None:
    runs: list[str] = []
    woken = asyncio.Event()
    failures = 0
    failed_again = asyncio.Event()

    async def slow_poll(_factory: async_sessionmaker[AsyncSession], _settings: Settings) -> int:
        runs.append("poll")
        if len(runs) > 1:
            woken.set()
        return 0

    async def broken(_factory: async_sessionmaker[AsyncSession], _settings: Settings) -> int:
        nonlocal failures
        failures += 1
        if failures >= 3:
            failed_again.set()
        raise RuntimeError("boom")

    worker = Worker(
        async_sessionmaker(),
        settings,
        jobs=[RegisteredJob("broken", broken, 0.01), RegisteredJob("poll", slow_poll, 3600)],
    )
    task = asyncio.create_task(worker.run())
    # The failing job keeps its 10 ms rhythm; meanwhile the hourly job has run once and waits.
    await asyncio.wait_for(failed_again.wait(), timeout=10)
    assert runs == ["poll"], "the hourly job ran once and waits"
    worker.wake.set()
    await asyncio.wait_for(woken.wait(), timeout=2)
    worker.stop()
    await asyncio.wait_for(task, timeout=2)
    assert task.exception() is None


async def test_the_worker_touches_its_heartbeat_file_after_every_round(
    settings: Settings, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "worker.alive"
    rounds = asyncio.Event()

    async def job(_factory: async_sessionmaker[AsyncSession], _settings: Settings) -> int:
        rounds.set()
        return 0

    worker = Worker(
        async_sessionmaker(),
        settings.model_copy(update={"worker_heartbeat_file": heartbeat}),
        jobs=[RegisteredJob("job", job, 3600)],
    )
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(rounds.wait(), timeout=10)
    worker.stop()
    await asyncio.wait_for(task, timeout=10)
    assert heartbeat.exists()
