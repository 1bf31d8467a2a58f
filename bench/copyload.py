"""Bulk loading with COPY (asyncpg's copy_records_to_table): people first, then history in chunks.

Foreign-key triggers are off for the loading connection (`session_replication_role = replica`, a
superuser setting): the generator builds every reference itself, and checking each of millions of
rows would triple the load time. Indexes are kept up to date as rows arrive, as in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg


async def loading_connection(url: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(url)
    await connection.execute("SET session_replication_role = replica")
    await connection.execute("SET synchronous_commit = off")
    return connection


async def copy_rows(
    connection: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[object, ...]]
) -> None:
    await connection.copy_records_to_table(table, records=rows, columns=list(columns))
