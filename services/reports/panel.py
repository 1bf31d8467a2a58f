"""The panel: one row per patient of the caller, most urgent first, a page at a time.

The order is a keyset: open flags by severity (most first), the name, then the patient id. A page
after the first counts only the flags that existed when the first page was read (`as_of`, carried in
the cursor), so a flag raised while a provider pages (the usual write: an entry that fires a rule)
cannot move a patient across the page boundary, skipped or shown twice. The rows show the flags open
now. Acknowledging, resolving or escalating a flag between pages does change its patient's place
(flags keep no history to replay); that patient may then be shown twice or, when a flag is closed,
once less. The cursor names no patient data: the boundary's name is looked up by its id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Uuid, and_, bindparam, case, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient, Role, User
from models.common import Page
from models.entries import AnxietyScore, CheckIn, SymptomReport
from models.flags import Flag, FlagStatus
from models.summaries import FlagCounts, PanelRow
from services.accounts import audit
from services.accounts.access import Caller, readable_patients, require_role
from services.errors import FieldError, ValidationFailed
from services.localtime import local_date, utc
from services.pagination import b64_json_decode, b64_json_encode
from services.reports.summaries import PANEL_DAYS, adherence, live, schedules_in, taken_per_day

SEVERITIES = ("urgent", "high", "routine")
MAX_COUNT = 1_000_000  # no patient has a million open flags: a bigger number is not a cursor we made


@dataclass(frozen=True)
class PanelCursor:
    """The last row of the previous page (its flag counts as of `as_of`, and its id)."""

    as_of: datetime
    counts: tuple[int, int, int]
    id: uuid.UUID

    def encode(self) -> str:
        return b64_json_encode(
            {"as_of": self.as_of.isoformat(), "open": list(self.counts), "id": str(self.id)}
        )

    @classmethod
    def decode(cls, value: str | None) -> PanelCursor | None:
        if not value:
            return None
        try:
            data = b64_json_decode(value)
            as_of = datetime.fromisoformat(data["as_of"])
            counts = tuple(data["open"])
            if as_of.tzinfo is None or not 1900 <= as_of.year <= 2100:
                raise ValueError("not a cursor we made")
            if len(counts) != 3 or not all(type(n) is int and 0 <= n < MAX_COUNT for n in counts):
                raise ValueError("not a cursor we made")
            return cls(as_of=as_of, counts=(counts[0], counts[1], counts[2]), id=uuid.UUID(data["id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationFailed(
                [FieldError(("query", "cursor"), "is not a cursor this API gave")]
            ) from exc


def _open_flags(caller: Caller, as_of: datetime) -> Any:
    """Per patient of the caller's organization: open flags by severity, now and as of `as_of`."""

    def count(severity: str, *, snapshot: bool) -> Any:
        wanted = col(Flag.severity) == severity
        if snapshot:
            wanted = and_(wanted, col(Flag.created_at) <= as_of)
        return func.sum(case((wanted, 1), else_=0)).label(f"{severity}_{'key' if snapshot else 'now'}")

    return (
        select(
            col(Flag.patient_id).label("patient_id"),
            *(count(severity, snapshot=True) for severity in SEVERITIES),
            *(count(severity, snapshot=False) for severity in SEVERITIES),
        )
        .where(col(Flag.organization_id) == caller.organization_id, col(Flag.status) == FlagStatus.open.value)
        .group_by(col(Flag.patient_id))
        .subquery("open_flags")
    )


async def panel_page(
    session: AsyncSession, caller: Caller, now: datetime, limit: int, cursor: str | None
) -> Page[PanelRow]:
    require_role(caller, Role.provider, Role.admin)
    after = PanelCursor.decode(cursor)
    as_of = after.as_of if after else now
    flags = _open_flags(caller, as_of)
    key_counts = [func.coalesce(getattr(flags.c, f"{s}_key"), 0) for s in SEVERITIES]
    now_counts = [func.coalesce(getattr(flags.c, f"{s}_now"), 0) for s in SEVERITIES]
    sort_key = (*(-n for n in key_counts), func.lower(col(User.name)), col(Patient.id))
    statement = (
        readable_patients(caller)
        .with_only_columns(col(Patient.id), col(Patient.timezone), col(User.name), *key_counts, *now_counts)
        .join(User, col(User.id) == col(Patient.user_id))
        .outerjoin(flags, flags.c.patient_id == col(Patient.id))
    )
    if after is not None:
        # The boundary's name from its id; a patient gone since sorts first among equals, so rows are
        # shown again rather than skipped.
        boundary_name = (
            select(func.lower(col(User.name)))
            .join(Patient, col(Patient.user_id) == col(User.id))
            .where(col(Patient.id) == after.id)
            .scalar_subquery()
        )
        boundary = (
            *(literal(-n, Integer) for n in after.counts),
            func.coalesce(boundary_name, ""),
            literal(after.id, Uuid()),
        )
        statement = statement.where(tuple_(*sort_key) > tuple_(*boundary))
    rows = list((await session.execute(statement.order_by(*sort_key).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = PanelCursor(utc(as_of), (last[3], last[4], last[5]), last[0]).encode()
    items = await _rows(
        session, [(r[0], r[1], r[2], FlagCounts(urgent=r[6], high=r[7], routine=r[8])) for r in rows], now
    )
    await audit.record(session, caller, "GET /v1/panel", [item.patient_id for item in items])
    return Page(items=items, next_cursor=next_cursor)


def _latest(model: Any, column: Any, newest_first: Any, *where: Any) -> Any:
    """The newest row's column for the outer patient: a walk down an index, not over the history."""
    return (
        select(column)
        .where(col(model.patient_id) == col(Patient.id), live(model), *where)
        .order_by(newest_first.desc())
        .limit(1)
        .scalar_subquery()
    )


_PAGE: Any = bindparam("ids", expanding=True)
# Statements are built once, at import (ENGINEERING.md, "Hot paths").
_LATEST = select(
    col(Patient.id),
    _latest(CheckIn, col(CheckIn.local_date), col(CheckIn.local_date)),
    _latest(
        AnxietyScore,
        col(AnxietyScore.band),
        col(AnxietyScore.recorded_at),
        col(AnxietyScore.instrument) == "gad7",
    ),
).where(col(Patient.id).in_(_PAGE))
_WORST_GRADE_PER_DAY = (
    select(col(SymptomReport.patient_id), col(SymptomReport.local_date), func.max(col(SymptomReport.grade)))
    .where(
        col(SymptomReport.patient_id).in_(_PAGE),
        col(SymptomReport.local_date).between(bindparam("start"), bindparam("end")),
        live(SymptomReport),
    )
    .group_by(col(SymptomReport.patient_id), col(SymptomReport.local_date))
)


async def _rows(
    session: AsyncSession, patients: list[tuple[uuid.UUID, str, str, FlagCounts]], now: datetime
) -> list[PanelRow]:
    """The page's rows: each patient's last 7 local days, in four grouped queries for the page."""
    if not patients:
        return []
    ids = [patient_id for patient_id, *_ in patients]
    today = {patient_id: local_date(now, timezone) for patient_id, timezone, *_ in patients}
    # A day of margin: every patient's own last 7 local days lie within these dates.
    earliest = min(today.values()) - timedelta(days=PANEL_DAYS)
    latest = max(today.values())

    last = {
        patient_id: (check_in, band)
        for patient_id, check_in, band in await session.execute(_LATEST, {"ids": ids})
    }
    worst: dict[uuid.UUID, int] = {}
    grades = await session.execute(_WORST_GRADE_PER_DAY, {"ids": ids, "start": earliest, "end": latest})
    for patient_id, day, grade in grades:
        first_day = today[patient_id] - timedelta(days=PANEL_DAYS - 1)
        if grade is not None and first_day <= day <= today[patient_id]:
            worst[patient_id] = max(worst.get(patient_id, 0), grade)
    taken = await taken_per_day(session, ids, earliest, latest)
    schedules = await schedules_in(session, ids, earliest, latest)

    rows = []
    for patient_id, timezone, name, open_flags in patients:
        days = [today[patient_id] - timedelta(days=n) for n in range(PANEL_DAYS - 1, -1, -1)]
        last_check_in, last_band = last.get(patient_id, (None, None))
        rows.append(
            PanelRow(
                patient_id=patient_id,
                name=name,
                open_flags=open_flags,
                last_check_in=last_check_in,
                adherence_7d=adherence(schedules[patient_id], days, timezone, now, taken[patient_id]).percent,
                gad7_last_band=last_band,
                worst_grade_7d=worst.get(patient_id),
            )
        )
    return rows
