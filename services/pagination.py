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


def b64_json_decode(value: str) -> dict[str, Any]:
    """Raises ValueError for anything that is not a cursor we made."""
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError("not a cursor") from exc
    if not isinstance(data, dict):
        raise ValueError("not a cursor")
    return data


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
            data = b64_json_decode(value)
            at = datetime.fromisoformat(data["at"])
            if at.tzinfo is None or not 1900 <= at.year <= 2100:
                raise ValueError("not a cursor we made")
            return cls(at=at, id=uuid.UUID(data["id"]))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValidationFailed(
                [FieldError(("query", "cursor"), "is not a cursor this API gave")]
            ) from exc


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
