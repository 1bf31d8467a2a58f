"""One pass of the time-based rules (abrupt stop, missed check-ins, and the safety net that re-reads each
patient's last 2 local days of doses for dose_above_max) over a datagen database: its time, its
statements and its peak memory, as the worker runs it.

    python -m bench.datagen --patients 100000 --days 14      # prints SYMPTRACK_DATABASE_URL=...
    SYMPTRACK_DATABASE_URL=... python -m bench.time_rules

datagen's people keep taking their doses up to the last day of their history, so a pass finds
lapses only for those whose history it ends early: `--lapsed N` makes the first N patients' last
`--lapse-days` days empty first (deleted), so the pass has flags to raise as well as patients to read.
`--overdosed N` raises one taken dose on the last dosing day of the first N patients to 3601 mg (above
the label maximum of 3600 whatever else applies), written around the rules as a lost race would leave
it, so the safety net has days to flag (datagen's history ends yesterday: inside the 2 days).
The flags it raises stay in the database; run it on a throwaway one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.database import create_session_factory
from services.flags.time_rules import BATCH, evaluate_time_rules
from services.settings import Settings


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _lapse(engine: Any, patients: int, days: int) -> None:
    """The first `patients` patients (by id) stopped logging `days` days before their history ends."""
    async with engine.begin() as connection:
        for table in ("dose", "check_in"):
            await connection.execute(
                text(
                    f"DELETE FROM {table} t USING (SELECT id FROM patient ORDER BY id LIMIT :n) p "
                    f"WHERE t.patient_id = p.id AND t.local_date > "
                    f"(SELECT max(local_date) FROM {table}) - CAST(:days AS integer)"
                ),
                {"n": patients, "days": days},
            )


async def _overdose(engine: Any, patients: int) -> None:
    """One taken dose on the last dosing day of the first `patients` patients (by id) becomes 3601 mg."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE dose SET dose_mg = 3601 WHERE id IN ("
                "SELECT DISTINCT ON (d.patient_id) d.id FROM dose d "
                "JOIN (SELECT id FROM patient ORDER BY id LIMIT :n) p ON d.patient_id = p.id "
                "WHERE d.status = 'taken' AND d.entered_in_error_at IS NULL "
                "ORDER BY d.patient_id, d.local_date DESC)"
            ),
            {"n": patients},
        )


async def run(database_url: str, lapsed: int, lapse_days: int, overdosed: int = 0) -> None:
    settings = Settings(database_url=database_url)
    engine = create_async_engine(database_url, pool_size=2, hide_parameters=True)
    if lapsed:
        await _lapse(engine, lapsed, lapse_days)
    if overdosed:
        await _overdose(engine, overdosed)
    async with engine.connect() as connection:
        patients = (await connection.execute(text("SELECT count(*) FROM patient"))).scalar_one()
        entries = (
            await connection.execute(
                text("SELECT (SELECT count(*) FROM dose) + (SELECT count(*) FROM check_in)")
            )
        ).scalar_one()
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    rss_before = _peak_rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    touched = await evaluate_time_rules(create_session_factory(engine), settings)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    await engine.dispose()
    print(
        f"time rules over {patients:,} patients ({entries:,} doses and check-ins): {seconds:.1f} s "
        f"({cpu:.1f} s of CPU here), {statements:,} statements in batches of {BATCH}, "
        f"{touched:,} flags raised or added to, peak RSS {_peak_rss_mb():.0f} MB "
        f"({rss_before:.0f} MB before the pass)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lapsed", type=int, default=0, help="patients whose last days are emptied first")
    parser.add_argument("--lapse-days", type=int, default=4)
    parser.add_argument("--overdosed", type=int, default=0, help="patients given a day over 3600 mg first")
    args = parser.parse_args()
    asyncio.run(run(os.environ["SYMPTRACK_DATABASE_URL"], args.lapsed, args.lapse_days, args.overdosed))


if __name__ == "__main__":
    main()
