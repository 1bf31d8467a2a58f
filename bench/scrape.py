"""The cost of a /metrics scrape at an empty database and at millions of rows, side by side (issue 26).

    python -m bench.scrape                                   # 2M deliveries, 1M flags, 50 scrapes each
    python -m bench.scrape --deliveries 200000 --flags 100000 --scrapes 20

A `symptrack_bench_*` database of its own (dropped afterwards), migrated as production is. The scrape is
`GET /metrics` through the app in this process (its route, its statements, PostgreSQL), from loopback.
Rows go in with generate_series, history as production grows it: 97% of deliveries succeeded, 2% dead,
1% failed and waiting for their retry; 97% of flags resolved, 2% open, 1% acknowledged. Measured:
- empty: the migrated database, nothing in it;
- loaded: right after the load, before any vacuum (an index-only scan still reads each table page the
  visibility map does not cover yet: the worst case, until autovacuum comes);
- vacuumed: after VACUUM ANALYZE, as autovacuum leaves a table (the steady state);
- vacuumed, without ix_flag_status_rule_severity: the flag counts as they were read before 0014.
Each: the first scrape, then p50 / p95 / max of the next ones (ms), p50's ratio to the empty one's, and
the pages (8 kB buffers) one scrape's statements touch (EXPLAIN ANALYZE BUFFERS: not timing, so not
moved by whatever else runs on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import pg
from bench.config import BenchConfig

_FILL = [
    "INSERT INTO organization (id, name, created_at) VALUES ('00000000-0000-0000-0000-0000000000b1', "
    "'bench', now())",
    "INSERT INTO webhook_endpoint (id, organization_id, url, events, min_severity, enabled, secret, "
    "created_at, updated_at) VALUES ('00000000-0000-0000-0000-0000000000b2', "
    "'00000000-0000-0000-0000-0000000000b1', 'https://example.org/h', '[\"flag.created\"]', 'urgent', "
    "true, 'x', now(), now())",
    "INSERT INTO outbox_event (id, type, organization_id, severity, data, created_at) VALUES "
    "('00000000-0000-0000-0000-0000000000b3', 'flag.created', '00000000-0000-0000-0000-0000000000b1', "
    "'urgent', '{}', now())",
]
_DELIVERIES = (
    "INSERT INTO webhook_delivery (id, endpoint_id, event_id, event_type, urgent, status, attempts, "
    "schedule_step, next_attempt_at, created_at, updated_at) "
    "SELECT gen_random_uuid(), '00000000-0000-0000-0000-0000000000b2', "
    "'00000000-0000-0000-0000-0000000000b3', 'flag.created', false, "
    "CASE WHEN g % 100 < 97 THEN 'succeeded' WHEN g % 100 < 99 THEN 'dead' ELSE 'failed' END, 1, 0, "
    "now() + CASE WHEN g % 100 = 99 THEN interval '1 hour' ELSE interval '-1 day' END, "
    "now() - ($1::int - g) * interval '10 seconds', now() FROM generate_series(1, $1::int) g"
)
# Flags' patients are not the point here: foreign keys are off for this one statement (superuser).
_FLAGS = (
    "INSERT INTO flag (id, patient_id, organization_id, rule, severity, severity_rank, status, reason, "
    "symptom_key, evidence, created_at, updated_at, observed_at, last_observed_at, history) "
    "SELECT gen_random_uuid(), gen_random_uuid(), '00000000-0000-0000-0000-0000000000b1', "
    "(ARRAY['seizure','missed_doses','gad7_rise','dizziness','sedation'])[1 + g % 5], "
    "(ARRAY['urgent','high','routine'])[1 + g % 3], 3 - g % 3, "
    "CASE WHEN g % 100 < 2 THEN 'open' WHEN g % 100 < 3 THEN 'acknowledged' ELSE 'resolved' END, "
    "'r', '', '[]', now(), now(), now() - g * interval '1 minute', now(), '[]' "
    "FROM generate_series(1, $1::int) g"
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def _scrapes(app_url: str, count: int) -> Scrapes:
    from api.app import create_app
    from services.settings import Settings

    settings = Settings(
        _env_file=None,
        database_url=app_url,
        environment="development",
        secret_key="bench-scrape-secret-key-long-enough-0123456789",
    )
    app = create_app(settings)
    timings: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)  # its client is 127.0.0.1: a loopback scrape
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(count):
                started = time.perf_counter()
                answer = await client.get("/metrics")
                timings.append(time.perf_counter() - started)
                answer.raise_for_status()
            pages = await _pages_read(app.state.engine, client)
    return Scrapes(timings, pages)


async def _pages_read(engine: AsyncEngine, client: httpx.AsyncClient) -> int:
    """Buffers (8 kB pages, in memory or read) the gauge statements of one more scrape touch, from
    EXPLAIN (ANALYZE, BUFFERS): what a scrape costs the database, whatever else loads the machine."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        (await client.get("/metrics")).raise_for_status()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    pages = 0
    async with engine.connect() as connection:
        for statement, parameters in statements:
            explained = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement
            [plan] = (await connection.exec_driver_sql(explained, parameters)).scalar_one()
            top = plan["Plan"]
            pages += int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))
    return pages


@dataclass(frozen=True)
class Scrapes:
    timings: list[float]  # seconds, in order
    pages: int  # buffers one scrape's gauge statements touch


def _row(name: str, scrapes: Scrapes, empty_p50: float | None) -> float:
    first, rest = scrapes.timings[0], scrapes.timings[1:]
    p50 = statistics.median(rest)
    p95 = statistics.quantiles(rest, n=20, method="inclusive")[-1] if len(rest) >= 2 else rest[0]
    ratio = "1.0" if empty_p50 is None else f"{p50 / empty_p50:.1f}"
    cells = [name, _ms(first), _ms(p50), _ms(p95), _ms(max(rest)), ratio, str(scrapes.pages)]
    print("| " + " | ".join(cells) + " |", flush=True)
    return p50


async def _run(deliveries: int, flags: int, scrapes: int) -> None:
    config = BenchConfig.from_env()
    database = await pg.create(config)
    try:
        pg.migrate(config, database, dict(os.environ))
        print(f"{deliveries} deliveries, {flags} flags, {scrapes} scrapes a row (ms)\n", flush=True)
        print("| database | first | p50 | p95 | max | p50 / empty | pages |", flush=True)
        print("|---|---|---|---|---|---|---|", flush=True)
        empty = _row("empty", await _scrapes(database.app_url, scrapes), None)
        connection = await asyncpg.connect(database.url)
        try:
            for statement in _FILL:
                await connection.execute(statement)
            for table in ("webhook_delivery", "flag"):  # "not vacuumed" stays so while it is measured
                await connection.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            await connection.execute(_DELIVERIES, deliveries)
            await connection.execute("SET session_replication_role = replica")
            await connection.execute(_FLAGS, flags)
            await connection.execute("SET session_replication_role = DEFAULT")
            loaded = f"{deliveries // 1000}k deliveries, {flags // 1000}k flags"
            _row(f"{loaded}, not vacuumed", await _scrapes(database.app_url, scrapes), empty)
            for table in ("webhook_delivery", "flag"):
                await connection.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
                await connection.execute(f"VACUUM ANALYZE {table}")
            _row(f"{loaded}, vacuumed", await _scrapes(database.app_url, scrapes), empty)
            await connection.execute("DROP INDEX ix_flag_status_rule_severity")
            await connection.execute("ANALYZE flag")
            _row(
                f"{loaded}, vacuumed, no flag index (before 0014)",
                await _scrapes(database.app_url, scrapes),
                empty,
            )
        finally:
            await connection.close()
    finally:
        await pg.drop(config, database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=2_000_000)
    parser.add_argument("--flags", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=50, help="per row, the first one included")
    arguments = parser.parse_args()
    asyncio.run(_run(arguments.deliveries, arguments.flags, max(3, arguments.scrapes)))


if __name__ == "__main__":
    main()
