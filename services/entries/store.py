"""The entries domain's database statements: finding and inserting entries exactly once, the parts of a
check-in, and marking entries entered-in-error. The recorder and the kinds decide; this module only
reads and writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from services.errors import Conflict

EntryModel = type[Dose] | type[AnxietyScore] | type[SymptomReport] | type[CheckIn]
Row = TypeVar("Row", bound=SQLModel)
PART_MODELS: tuple[type[Dose], type[SymptomReport], type[AnxietyScore]] = (Dose, SymptomReport, AnxietyScore)

CONFLICT = "An entry with this id already exists with different content."


async def find_retry(
    session: AsyncSession, model: type[Row], entry_id: uuid.UUID, content_hash: str
) -> Row | None:
    """The stored entry when this is a retry of it; None when the id is new; Conflict otherwise."""
    stored = await session.get(model, entry_id, populate_existing=True)
    if stored is None:
        return None
    if getattr(stored, "content_hash", None) != content_hash:
        raise Conflict(CONFLICT)
    return stored


async def insert_once(
    session: AsyncSession, rows: list[SQLModel], model: type[Row], entry_id: uuid.UUID, content_hash: str
) -> Row | None:
    """Insert the rows of a new entry in a savepoint. When a concurrent request with the same id won
    the race, the unique key refuses ours: answer as for a retry (the stored entry) or a conflict."""
    savepoint = await session.begin_nested()
    try:
        # The first row is the entry the others point at (a check-in and its parts): flush it first.
        session.add(rows[0])
        await session.flush()
        if rows[1:]:
            session.add_all(rows[1:])
            await session.flush()
    except IntegrityError:
        await savepoint.rollback()
        for row in rows:
            if row in session:
                session.expunge(row)
        stored = await find_retry(session, model, entry_id, content_hash)
        if stored is None:
            # Not the entry's own id: one of its parts collided with an entry written meanwhile.
            raise Conflict("A part of this entry uses an id another entry took meanwhile.") from None
        return stored
    await savepoint.commit()
    return None


async def ids_taken(
    session: AsyncSession, model: type[Dose] | type[SymptomReport], ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these ids another entry of this kind already has."""
    if not ids:
        return set()
    return set((await session.execute(select(col(model.id)).where(col(model.id).in_(ids)))).scalars())


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
