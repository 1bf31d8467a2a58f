"""Indexes added to tables that already hold rows, from a migration, without blocking writers.

A plain CREATE INDEX holds a lock that stops every INSERT, UPDATE and DELETE on the table until the
index is built; on a table of millions of entries that is minutes of refused check-ins. On PostgreSQL
these helpers build (and drop) CONCURRENTLY instead, which cannot run inside a transaction: they run in
an autocommit block, so alembic/env.py gives each migration its own transaction
(`transaction_per_migration`) and a migration that uses them does nothing else, so a rerun after a
failure repeats only them. SQLite (one writer, small databases) gets the plain statements.

A concurrent build that fails (cancelled, timed out, the server restarted) leaves an INVALID index
behind: never used by queries, yet still maintained on every write, and a later `IF NOT EXISTS` would
accept it. `create_index` drops such a leftover first, so running `symptrack migrate` again finishes
the job.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text

from alembic import op

_INVALID_INDEX = text(
    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace AND NOT i.indisvalid"
)


def _on_postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def create_index(name: str, table: str, columns: Sequence[str]) -> None:
    """CREATE INDEX, concurrently on PostgreSQL and idempotent there: an invalid leftover of a failed
    build is dropped and built again, a valid index of that name is kept."""
    if not _on_postgresql():
        op.create_index(name, table, list(columns))
        return
    with op.get_context().autocommit_block():
        if op.get_bind().execute(_INVALID_INDEX, {"name": name}).first() is not None:
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(name, table, list(columns), postgresql_concurrently=True, if_not_exists=True)


def drop_index(name: str, table: str) -> None:
    """DROP INDEX, concurrently on PostgreSQL (without the exclusive lock that would queue every read
    and write of the table behind it) and idempotent there."""
    if not _on_postgresql():
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
