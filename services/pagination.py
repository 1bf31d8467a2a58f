"""Keyset pagination: stable under inserts, cheap at any depth (no OFFSET)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.elements import ColumnElement

from services.errors import FieldError, ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def b64_json_encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


MAX_CURSOR_LENGTH = 512  # ours are under 200 characters; a longer one is not ours (and costs nothing)
# Whatever a crafted cursor makes the decoding raise: all mean "not a cursor we made", a 422.
NOT_A_CURSOR = (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError, IndexError)


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed([FieldError(("query", "cursor"), "is not a cursor this API gave")])


def b64_json_decode(value: str) -> dict[str, Any]:
    """Raises ValueError for anything that is not a cursor we made."""
    if not isinstance(value, str) or len(value) > MAX_CURSOR_LENGTH:
        raise ValueError("not a cursor")
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, RecursionError) as exc:  # binascii, JSON and UTF-8 errors are ValueErrors
        raise ValueError("not a cursor") from exc
    if not isinstance(data, dict):
        raise ValueError("not a cursor")
    return data


def cursor_fields(value: str, *names: str) -> dict[str, Any]:
    """A cursor of ours has exactly its own fields: another list's cursor, or one with more, is not."""
    data = b64_json_decode(value)
    if set(data) != set(names):
        raise ValueError("not a cursor we made")
    return data


def cursor_uuid(value: object) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError("not a cursor we made")
    return uuid.UUID(value)


def cursor_instant(value: object) -> datetime:
    """An aware instant of the years our rows can have (every driver takes it, and it compares)."""
    if not isinstance(value, str):
        raise ValueError("not a cursor we made")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None or not 1900 <= at.year <= 2100:
        raise ValueError("not a cursor we made")
    return at


def cursor_int(value: object, low: int, high: int) -> int:
    """A JSON integer (not a bool, float or string) in [low, high]: nothing past a driver's range."""
    if type(value) is not int or not low <= value <= high:
        raise ValueError("not a cursor we made")
    return value


@dataclass(frozen=True)
class Cursor:
    """The last row of the previous page: its sort time and id."""

    at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        return b64_json_encode({"at": self.at.isoformat(), "id": str(self.id)})

    @classmethod
    def decode(cls, value: str | None) -> Cursor | None:
        if not value:
            return None
        try:
            data = cursor_fields(value, "at", "id")
            return cls(at=cursor_instant(data["at"]), id=cursor_uuid(data["id"]))
        except NOT_A_CURSOR as exc:
            raise invalid_cursor() from exc


async def page_of(
    session: AsyncSession,
    statement: Select[Any],
    cursor: Cursor | None,
    limit: int,
    *,
    time_column: Mapped[datetime] | ColumnElement[datetime],
    id_column: Mapped[uuid.UUID] | ColumnElement[uuid.UUID],
    cursor_of: Callable[[tuple[Any, ...]], Cursor],
) -> tuple[list[tuple[Any, ...]], str | None]:
    """Rows of `statement` ordered by (time, id), after the cursor; and the cursor for the next page."""
    if cursor is not None:
        statement = statement.where(
            or_(time_column > cursor.at, and_(time_column == cursor.at, id_column > cursor.id))
        )
    rows = list((await session.execute(statement.order_by(time_column, id_column).limit(limit + 1))).all())
    if len(rows) <= limit:
        return [tuple(row) for row in rows], None
    page = [tuple(row) for row in rows[:limit]]
    return page, cursor_of(page[-1]).encode()
