"""The entries domain's database statements: inserting entries exactly once, finding the stored ones
a retry or a conflict is answered from, the parts of a check-in, and marking entries entered-in-error.
The recorder and the kinds decide; this module only reads and writes.

The write path is SQLAlchemy Core, its statements built once per table and dialect: a multi-row
`INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id` (PostgreSQL, and SQLite >= 3.35) tells which
rows are new without a savepoint or a read before it; the stored rows are read only for the ids it
did not insert. A concurrent twin waits on the unique key (PostgreSQL) or on the write lock (SQLite)
and then finds the winner's row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from services.entries.rows import EntryRow
from services.errors import Conflict

EntryModel = type[Dose] | type[AnxietyScore] | type[SymptomReport] | type[CheckIn]
Row = TypeVar("Row", bound=SQLModel)
PART_MODELS: tuple[type[Dose], type[SymptomReport], type[AnxietyScore]] = (Dose, SymptomReport, AnxietyScore)
ENTRY_MODELS: tuple[EntryModel, ...] = (CheckIn, Dose, SymptomReport, AnxietyScore)

CONFLICT = "An entry with this id already exists with different content."


def table_of(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _insert_once(dialect: Any, table: Table) -> Any:
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[table.c.id]).returning(table.c.id)


# {dialect name: {table name: statement}}: compiled once, cached by SQLAlchemy after the first use.
_INSERT_ONCE: dict[str, dict[str, Any]] = {
    name: {table_of(m).name: _insert_once(dialect, table_of(m)) for m in ENTRY_MODELS}
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_STORED_HASHES = {
    table_of(m).name: select(table_of(m).c.id, table_of(m).c.content_hash).where(
        table_of(m).c.id.in_(bindparam("ids", expanding=True))
    )
    for m in ENTRY_MODELS
}


def values_of(row: EntryRow) -> dict[str, Any]:
    """The row's columns as an INSERT takes them."""
    return row.values


async def insert_new(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[EntryRow]
) -> set[uuid.UUID]:
    """Inserts the rows whose id no entry of this kind has yet, in one statement; the ids inserted."""
    if not rows:
        return set()
    statement = _INSERT_ONCE[session.get_bind().dialect.name][table_of(model).name]
    result = await session.execute(statement, [row.values for row in rows])
    return set(result.scalars())


async def stored_hashes(
    session: AsyncSession, model: type[SQLModel], ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """{id: content hash} of the stored entries of this kind among these ids, in one query."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    result = await session.execute(_STORED_HASHES[table_of(model).name], {"ids": wanted})
    return {row.id: row.content_hash for row in result}


async def stored_entry(
    session: AsyncSession, model: type[Row], entry_id: uuid.UUID, content_hash: str
) -> Row:
    """The stored entry a retry is answered from (a rare path: the ORM serves it); Conflict when its
    content differs."""
    stored = await session.get(model, entry_id, populate_existing=True)
    if stored is None:
        # Not inserted, yet not there: it was deleted between the two statements.
        raise Conflict("The entry changed concurrently; send it again.")
    if getattr(stored, "content_hash", None) != content_hash:
        raise Conflict(CONFLICT)
    return stored


async def delete_check_ins(session: AsyncSession, ids: Iterable[uuid.UUID]) -> None:
    """Takes back check-ins just inserted whose parts could not all be stored (their parts go with them:
    the foreign key cascades)."""
    wanted = list(ids)
    if wanted:
        await session.execute(delete(CheckIn).where(col(CheckIn.id).in_(wanted)))


async def check_in_parts(session: AsyncSession, check_in_id: uuid.UUID) -> dict[type[SQLModel], list[Any]]:
    parts: dict[type[SQLModel], list[Any]] = {}
    for model in PART_MODELS:
        rows = await session.execute(select(model).where(col(model.check_in_id) == check_in_id))
        parts[model] = list(rows.scalars())
    return parts


async def mark_entered_in_error(
    session: AsyncSession, model: EntryModel, entry_id: uuid.UUID, at: datetime, by: uuid.UUID
) -> None:
    """The first mark stands: an entry marked before keeps its instant and author."""
    await session.execute(
        update(model)
        .where(col(model.id) == entry_id, col(model.entered_in_error_at).is_(None))
        .values(entered_in_error_at=at, entered_in_error_by=by)
    )


async def mark_parts_entered_in_error(
    session: AsyncSession, check_in_id: uuid.UUID, at: datetime, by: uuid.UUID
) -> set[uuid.UUID]:
    """Marks a check-in's parts; the ids of all its parts."""
    part_ids: set[uuid.UUID] = set()
    for model in PART_MODELS:
        await session.execute(
            update(model)
            .where(col(model.check_in_id) == check_in_id, col(model.entered_in_error_at).is_(None))
            .values(entered_in_error_at=at, entered_in_error_by=by)
        )
        ids = await session.execute(select(col(model.id)).where(col(model.check_in_id) == check_in_id))
        part_ids.update(ids.scalars())
    return part_ids
