"""Client ids make retries safe: the same id and content is the stored entry, other content is 409.

The content is fingerprinted after validation, with instants in UTC, so "08:00+02:00" and "06:00Z"
are the same content, while any change of value is not.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from services.errors import Conflict

Row = TypeVar("Row", bound=SQLModel)

CONFLICT = "An entry with this id already exists with different content."


def fingerprint(kind: str, patient_id: uuid.UUID, body: BaseModel) -> str:
    content = {"kind": kind, "patient_id": str(patient_id), "body": _canonical(body.model_dump())}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


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
