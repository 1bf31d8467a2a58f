"""The data generator: N patients times D days of realistic history in a PostgreSQL database, fast.

    python -m bench.datagen --patients 2000 --days 365          # a new symptrack_bench_* database
    python -m bench.datagen --patients 200 --days 90 --drop     # just time it

People go in with one COPY per table; history in chunks of patients, generated and copied by two
worker processes at once (one per core: while one generates rows, PostgreSQL ingests the other's),
with a progress bar.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing import get_context

import click

from bench import copyload, history, pg, population
from bench.config import BenchConfig
from bench.population import BenchPatient, Population
from services.accounts.passwords import hash_password

CHUNK_PATIENTS = 20
WORKERS = 2


@dataclass(frozen=True)
class Span:
    """Local days relative to each patient's today: `newest` days ago back to `oldest` days ago."""

    newest: int
    oldest: int

    @property
    def days(self) -> int:
        return self.oldest - self.newest + 1


async def load_population(url: str, people: Population) -> None:
    connection = await copyload.loading_connection(url)
    try:
        for table, columns in population.COLUMNS.items():
            await copyload.copy_rows(connection, table, columns, people.rows[table])
    finally:
        await connection.close()


def _load_chunk(url: str, patients: Sequence[BenchPatient], span: Span, now: datetime, seed: int) -> int:
    """In a worker process: generate the chunk's history and COPY it. Returns the rows loaded."""

    async def run() -> int:
        rng = random.Random(seed)
        rows = history.Rows()
        for patient in patients:
            today = patient.today(now)
            first = today - timedelta(days=span.oldest)
            last = today - timedelta(days=span.newest)
            history.patient_history(patient, first, last, rng, rows)
        connection = await copyload.loading_connection(url)
        try:
            for table in history.TABLES:
                await copyload.copy_rows(connection, table, history.COLUMNS[table], rows.tables[table])
        finally:
            await connection.close()
        return len(rows)

    return asyncio.run(run())


async def load_history(url: str, people: Population, span: Span, label: str) -> int:
    """Every patient's history over `span`, with a progress bar in patient-days. Returns rows loaded."""
    loop = asyncio.get_running_loop()
    chunks = [people.patients[i : i + CHUNK_PATIENTS] for i in range(0, len(people.patients), CHUNK_PATIENTS)]
    total_rows = 0
    with (
        ProcessPoolExecutor(WORKERS, mp_context=get_context("spawn")) as pool,
        click.progressbar(length=len(people.patients) * span.days, label=label, file=sys.stderr) as bar,
    ):
        futures = [
            loop.run_in_executor(pool, _load_chunk, url, chunk, span, people.created_at, hash((span, n)))
            for n, chunk in enumerate(chunks)
        ]
        for chunk, future in zip(chunks, futures, strict=True):
            total_rows += await future
            bar.update(len(chunk) * span.days)
    return total_rows


def password_hash() -> str:
    """One real Argon2 hash, shared by every bench account (hashing thousands would take minutes)."""
    return hash_password(population.PASSWORD)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--patients-per-provider", type=int, default=500)
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards (to time a load)")
    args = parser.parse_args(argv)
    config = BenchConfig.from_env()

    async def run() -> None:
        database = await pg.create(config)
        try:
            pg.migrate(config, database, dict(os.environ))
            started = time.perf_counter()
            people = population.build(args.patients, args.patients_per_provider, args.days, password_hash())
            await load_population(database.url, people)
            rows = await load_history(database.url, people, Span(1, args.days), "history")
            loaded = time.perf_counter()
            await pg.analyze(database)
            done = time.perf_counter()
            print(
                f"{database.name}: {args.patients} patients x {args.days} days, {rows:,} entries in "
                f"{loaded - started:.1f} s ({rows / (loaded - started):,.0f} rows/s), "
                f"VACUUM ANALYZE {done - loaded:.1f} s"
            )
            print(f"SYMPTRACK_DATABASE_URL={database.app_url}")
        finally:
            if args.drop:
                await pg.drop(config, database)

    asyncio.run(run())


if __name__ == "__main__":
    main()
