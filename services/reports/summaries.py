"""Summaries: one patient over a window of local days (the panel, in panel.py, shares the helpers).

Counts and sums are computed in SQL over the window only (indexes on (patient_id, local_date)), so the
cost follows the window asked for, not the length of the patient's history. Python only walks the
days of the window to lay the regimen's schedule over them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import Flag, FlagStatus
from models.regimens import Regimen
from models.summaries import (
    Adherence,
    CheckInSummary,
    DailyMg,
    FlagCounts,
    Gad7Point,
    Gad7Summary,
    PatientSummary,
    RatingPoint,
    RatingSummary,
    SymptomSummary,
)
from services.accounts.access import Caller
from services.errors import FieldError, ValidationFailed
from services.localtime import local_date, local_instant, utc
from services.prescribing.regimens import to_public as regimen_public

DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 3 * 366 + 1
ON_TIME = timedelta(minutes=60)  # API.md: on time when within 60 minutes of its time
PANEL_DAYS = 7


def window(
    patient: Patient, date_from: date | None, date_to: date | None, now: datetime
) -> tuple[date, date]:
    """The local days asked for; by default the last 30 local days, today included."""
    end = date_to or local_date(now, patient.timezone)
    start = date_from or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if start > end:
        raise ValidationFailed([FieldError(("query", "from"), "is after `to`")])
    if (end - start).days + 1 > MAX_WINDOW_DAYS:
        raise ValidationFailed(
            [FieldError(("query", "from"), f"the window is longer than {MAX_WINDOW_DAYS} days")]
        )
    return start, end


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def live(model: Any) -> Any:
    return col(model.entered_in_error_at).is_(None)


async def regimens_in(
    session: AsyncSession, patient_ids: list[uuid.UUID], start: date, end: date
) -> list[Regimen]:
    rows = await session.execute(
        select(Regimen)
        .where(
            col(Regimen.patient_id).in_(patient_ids),
            col(Regimen.start_date) <= end,
            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= start),
        )
        .order_by(col(Regimen.start_date), col(Regimen.created_at))
    )
    # A regimen replaced before it began (end before start) was never in force.
    return [r for r in rows.scalars() if r.end_date is None or r.end_date >= r.start_date]


@dataclass(frozen=True)
class Slot:
    day: date
    at: datetime


def scheduled_slots(
    regimens: list[Regimen], days: list[date], timezone: str, now: datetime
) -> dict[date, list[Slot]]:
    """Every scheduled dose of the days, at its wall-clock time in the patient's zone (DST-safe), for
    the regimens in force each day; only those whose time has come."""
    slots: dict[date, list[Slot]] = defaultdict(list)
    for day in days:
        for regimen in regimens:
            if regimen.start_date <= day and (regimen.end_date is None or day <= regimen.end_date):
                for entry in regimen.schedule:
                    hour, minute = map(int, str(entry["time"]).split(":"))
                    at = local_instant(day, time(hour, minute), timezone)
                    if at <= now:
                        slots[day].append(Slot(day, at))
    return slots


def adherence(slots: dict[date, list[Slot]], taken: dict[date, list[datetime]]) -> Adherence:
    """A scheduled dose is taken when a taken dose falls on its local day (one dose for one slot), and
    on time when a taken dose is within 60 minutes of its time."""
    scheduled = sum(len(day_slots) for day_slots in slots.values())
    taken_count = on_time = 0
    for day, day_slots in slots.items():
        doses = sorted(taken.get(day, []))
        taken_count += min(len(day_slots), len(doses))
        unused = list(doses)
        for slot in sorted(day_slots, key=lambda s: s.at):
            match = min(
                (d for d in unused if abs(d - slot.at) <= ON_TIME),
                key=lambda d: abs(d - slot.at),
                default=None,
            )
            if match is not None:
                unused.remove(match)
                on_time += 1
    return Adherence(
        scheduled=scheduled,
        taken=taken_count,
        percent=_percent(taken_count, scheduled),
        on_time_percent=_percent(on_time, scheduled),
    )


async def patient_summary(
    session: AsyncSession,
    caller: Caller,
    patient: Patient,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
) -> PatientSummary:
    """`patient` comes from access.patient_in_scope: staff in scope, or the patient themself (API.md).
    Nothing in the summary is staff-only: a patient may already list their own regimens, entries and
    flags, and the summary holds only numbers drawn from those (no notes, no names of others)."""
    start, end = window(patient, date_from, date_to, now)
    days = _days(start, end)
    in_window = (start, end)

    regimens = await regimens_in(session, [patient.id], start, end)
    taken_rows = await session.execute(
        select(col(Dose.local_date), col(Dose.taken_at), col(Dose.dose_mg)).where(
            col(Dose.patient_id) == patient.id,
            col(Dose.local_date).between(*in_window),
            col(Dose.status) == "taken",
            live(Dose),
        )
    )
    taken: dict[date, list[datetime]] = defaultdict(list)
    mg: dict[date, float] = defaultdict(float)
    for day, taken_at, dose_mg in taken_rows:
        taken[day].append(utc(taken_at))
        mg[day] += dose_mg

    gad7_rows = await session.execute(
        select(AnxietyScore)
        .where(
            col(AnxietyScore.patient_id) == patient.id,
            col(AnxietyScore.instrument) == "gad7",
            col(AnxietyScore.local_date).between(*in_window),
            live(AnxietyScore),
        )
        .order_by(col(AnxietyScore.recorded_at))
    )
    gad7 = [
        Gad7Point(date=r.local_date, recorded_at=utc(r.recorded_at), total=r.total or 0, band=r.band or "")
        for r in gad7_rows.scalars()
    ]
    rating_rows = await session.execute(
        select(AnxietyScore)
        .where(
            col(AnxietyScore.patient_id) == patient.id,
            col(AnxietyScore.instrument) == "rating",
            col(AnxietyScore.local_date).between(*in_window),
            live(AnxietyScore),
        )
        .order_by(col(AnxietyScore.recorded_at))
    )
    ratings = [
        RatingPoint(date=r.local_date, recorded_at=utc(r.recorded_at), score=r.score or 0)
        for r in rating_rows.scalars()
    ]

    symptoms = await _symptom_summaries(session, patient.id, start, end)
    flags = await _open_flag_counts(session, [patient.id])
    check_in_days = await session.scalar(
        select(func.count(distinct(col(CheckIn.local_date)))).where(
            col(CheckIn.patient_id) == patient.id, col(CheckIn.local_date).between(*in_window), live(CheckIn)
        )
    )
    last_regimen = next(
        (r for r in reversed(regimens) if r.start_date <= end and (r.end_date is None or end <= r.end_date)),
        regimens[-1] if regimens else None,
    )
    return PatientSummary(
        patient_id=patient.id,
        from_date=start,
        to_date=end,
        regimen=regimen_public(last_regimen) if last_regimen else None,
        regimens=[regimen_public(r) for r in regimens],
        adherence=adherence(scheduled_slots(regimens, days, patient.timezone, now), taken),
        daily_mg=[DailyMg(date=day, mg=round(mg.get(day, 0.0), 3)) for day in days],
        gad7=Gad7Summary(
            first=gad7[0].total if gad7 else None,
            last=gad7[-1].total if gad7 else None,
            change=gad7[-1].total - gad7[0].total if gad7 else None,
            last_band=gad7[-1].band if gad7 else None,
            series=gad7,
        ),
        rating=RatingSummary(
            mean=round(sum(r.score for r in ratings) / len(ratings), 2) if ratings else None, series=ratings
        ),
        symptoms=symptoms,
        open_flags=flags.get(patient.id, FlagCounts()),
        check_ins=CheckInSummary(
            days=int(check_in_days or 0), percent=_percent(int(check_in_days or 0), len(days)) or 0.0
        ),
    )


async def _symptom_summaries(
    session: AsyncSession, patient_id: uuid.UUID, start: date, end: date
) -> list[SymptomSummary]:
    scope = and_(
        col(SymptomReport.patient_id) == patient_id,
        col(SymptomReport.local_date).between(start, end),
        live(SymptomReport),
    )
    totals = await session.execute(
        select(
            col(SymptomReport.code),
            func.count(),
            func.count(distinct(col(SymptomReport.local_date))),
            func.max(col(SymptomReport.grade)),
        )
        .where(scope)
        .group_by(col(SymptomReport.code))
        .order_by(col(SymptomReport.code))
    )
    ranked = (
        select(
            col(SymptomReport.code).label("code"),
            col(SymptomReport.grade).label("grade"),
            func.row_number()
            .over(
                partition_by=col(SymptomReport.code),
                order_by=(col(SymptomReport.reported_at).desc(), col(SymptomReport.id).desc()),
            )
            .label("position"),
        )
        .where(scope)
        .subquery()
    )
    last = dict(
        (await session.execute(select(ranked.c.code, ranked.c.grade).where(ranked.c.position == 1))).all()
    )
    return [
        SymptomSummary(code=code, reports=reports, days=days, max_grade=max_grade, last_grade=last.get(code))
        for code, reports, days, max_grade in totals
    ]


async def _open_flag_counts(
    session: AsyncSession, patient_ids: list[uuid.UUID] | Select[Any]
) -> dict[uuid.UUID, FlagCounts]:
    rows = await session.execute(
        select(col(Flag.patient_id), col(Flag.severity), func.count())
        .where(col(Flag.patient_id).in_(patient_ids), col(Flag.status) == FlagStatus.open.value)
        .group_by(col(Flag.patient_id), col(Flag.severity))
    )
    counts: dict[uuid.UUID, FlagCounts] = defaultdict(FlagCounts)
    for patient_id, severity, count in rows:
        setattr(counts[patient_id], severity, count)
    return counts
