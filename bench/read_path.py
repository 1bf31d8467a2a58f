"""Service time of the read path at one connection: a 90-day summary, the report page of the same
window (its data and its HTML with charts), and a page of the panel.

    python -m bench.datagen --patients 500 --days 365      # prints SYMPTRACK_DATABASE_URL=...
    SYMPTRACK_DATABASE_URL=... python -m bench.read_path --runs 30

Calls the services straight (no HTTP, no auth), one request at a time, each in its own transaction
(rolled back: the audit records it writes stay out of the bench database), and prints the median and
p95 of each with the statements it sent, and the median CPU time of this process per request (the
rest of the wall time is PostgreSQL and the round trips). The first provider's panel is read at each
of `--panel-limits` rows. `--profile` adds a cProfile of each (the top functions by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from models.accounts import Patient, Role, User
from models.base import utcnow
from services.accounts.access import Caller
from services.localtime import local_date
from services.reports import panel, report_data, report_page, summaries


async def _timed(
    engine: Any,
    runs: int,
    work: Callable[[AsyncSession], Awaitable[object]],
    profiler: cProfile.Profile | None = None,
) -> tuple[float, float, float, int]:
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    times, cpu = [], []
    for _ in range(runs):
        async with AsyncSession(engine, expire_on_commit=False) as session:
            event.listen(engine.sync_engine, "before_cursor_execute", count)
            statements = 0
            if profiler is not None:
                profiler.enable()
            started, started_cpu = time.perf_counter(), time.process_time()
            await work(session)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            if profiler is not None:
                profiler.disable()
            event.remove(engine.sync_engine, "before_cursor_execute", count)
            await session.rollback()
    times.sort()
    p95 = times[max(0, round(0.95 * len(times)) - 1)]
    return statistics.median(times), p95, statistics.median(cpu), statements


def _top(profiler: cProfile.Profile, lines: int = 25) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
    return out.getvalue()


async def run(url: str, runs: int, days: int, panel_limits: list[int], profile: bool) -> None:
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    async with AsyncSession(engine) as session:
        provider = (
            await session.execute(
                select(User).where(User.role == Role.provider).order_by(User.email).limit(1)  # type: ignore[arg-type]
            )
        ).scalar_one()
        patient = (await session.execute(select(Patient).order_by(Patient.id).limit(1))).scalar_one()  # type: ignore[arg-type]
    staff = Caller(provider.id, Role.admin, provider.organization_id, uuid.uuid4())
    now = utcnow()
    end = local_date(now, patient.timezone)
    start = end - timedelta(days=days - 1)

    async def summary(session: AsyncSession) -> object:
        return await summaries.patient_summary(session, staff, patient, start, end, now)

    async def report(session: AsyncSession) -> object:
        data = await report_data.report_data(session, staff, patient, start, end, now)
        return report_page.render(data, "bench")

    def panel_page(limit: int) -> Callable[[AsyncSession], Awaitable[object]]:
        async def page(session: AsyncSession) -> object:
            return await panel.panel_page(session, staff, now, limit, None)

        return page

    scenarios: list[tuple[str, Callable[[AsyncSession], Awaitable[object]]]] = [
        (f"summary, {days} days", summary),
        (f"report, {days} days", report),
    ]
    scenarios += [(f"panel, {limit} rows", panel_page(limit)) for limit in panel_limits]
    profiles = []
    for label, work in scenarios:
        await _timed(engine, 3, work)  # warm up: statement caches, zone data
        median, p95, cpu, statements = await _timed(engine, runs, work)
        timing = f"median {median * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   cpu {cpu * 1000:6.1f} ms"
        print(f"{label:<22} {timing}   {statements} statements", flush=True)
        if profile:
            profiler = cProfile.Profile()
            await _timed(engine, runs, work, profiler)
            profiles.append(f"--- {label}\n{_top(profiler)}")
    for text in profiles:
        print(text)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--panel-limits", default="500,50", help="panel page sizes, comma-separated")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of each")
    args = parser.parse_args()
    limits = [int(n) for n in args.panel_limits.split(",") if n]
    asyncio.run(run(os.environ["SYMPTRACK_DATABASE_URL"], args.runs, args.days, limits, args.profile))


if __name__ == "__main__":
    main()
