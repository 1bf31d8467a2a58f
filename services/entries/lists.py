"""Listing a patient's entries by local date range, a page at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient
from models.common import Page
from models.entries import AnxietyScore, CheckIn, Dose, EntryKind, SymptomReport
from services.entries import views as entry_views
from services.entries.kinds import check_in_view
from services.errors import FieldError, ValidationFailed
from services.pagination import Cursor, page_of

# Each kind's own instant: the order of the list and the key of its cursor.
_INSTANT = {
    EntryKind.dose: "taken_at",
    EntryKind.anxiety: "recorded_at",
    EntryKind.symptom: "reported_at",
    EntryKind.check_in: "submitted_at",
}
_MODELS: dict[EntryKind, Any] = {
    EntryKind.dose: Dose,
    EntryKind.anxiety: AnxietyScore,
    EntryKind.symptom: SymptomReport,
    EntryKind.check_in: CheckIn,
}
_VIEWS: dict[EntryKind, Callable[[Any], Any]] = {
    EntryKind.dose: entry_views.dose,
    EntryKind.anxiety: entry_views.anxiety,
    EntryKind.symptom: entry_views.symptom,
}


async def list_entries(
    session: AsyncSession,
    patient: Patient,
    kind: EntryKind,
    *,
    date_from: date | None,
    date_to: date | None,
    limit: int,
    cursor: str | None,
    include_entered_in_error: bool = False,
) -> Page[Any]:
    if date_from and date_to and date_from > date_to:
        raise ValidationFailed([FieldError(("query", "from"), "is after `to`")])
    model = _MODELS[kind]
    instant = getattr(model, _INSTANT[kind])
    statement = select(model).where(col(model.patient_id) == patient.id)
    if date_from is not None:
        statement = statement.where(col(model.local_date) >= date_from)
    if date_to is not None:
        statement = statement.where(col(model.local_date) <= date_to)
    if not include_entered_in_error:
        statement = statement.where(col(model.entered_in_error_at).is_(None))
    rows, next_cursor = await page_of(
        session,
        statement,
        Cursor.decode(cursor),
        limit,
        time_column=instant,
        id_column=col(model.id),
        cursor_of=lambda row: Cursor(getattr(row[0], _INSTANT[kind]), row[0].id),
    )
    if kind == EntryKind.check_in:
        items = [await check_in_view(session, row[0]) for row in rows]
    else:
        items = [_VIEWS[kind](row[0]) for row in rows]
    return Page(items=items, next_cursor=next_cursor)
