"""Regimens: what the prescriber ordered, and which one is in force on a patient's local day."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient, Role
from models.base import utcnow
from models.entries import AnxietyScore
from models.regimens import Regimen, RegimenCreate, RegimenPublic, RegimenWritten, ScheduledDose
from services.accounts.access import Caller, require_role
from services.clinical.prescribing import age_in, check_schedule
from services.errors import FieldError, ValidationFailed
from services.localtime import local_date

DEFAULT_MEDICATION = "gabapentin"


async def create_regimen(
    session: AsyncSession, caller: Caller, patient: Patient, data: RegimenCreate
) -> RegimenWritten:
    """A new regimen for a medication ends the previous one the day before it starts (API.md). The
    prescribing checks of CLINICAL.md 4 come first: a refused schedule writes nothing (422 on `schedule`,
    saying which limit it exceeds, never what dose to give); the warnings come with the answer."""
    require_role(caller, Role.provider, Role.admin)
    age = age_in(local_date(utcnow(), patient.timezone).year, patient.birth_year)
    checked = check_schedule(
        data.daily_mg, data.max_daily_mg, data.override_reason, patient.creatinine_clearance_ml_min, age
    )
    if checked.refusals:
        raise ValidationFailed([FieldError(("body", "schedule"), refusal) for refusal in checked.refusals])
    day_before = data.start_date - timedelta(days=1)
    await session.execute(
        update(Regimen)
        .where(
            col(Regimen.patient_id) == patient.id,
            col(Regimen.medication) == data.medication,
            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) > day_before),
        )
        .values(end_date=day_before)
    )
    regimen = Regimen(
        patient_id=patient.id,
        medication=data.medication,
        rxnorm=data.rxnorm,
        schedule=[slot.model_dump() for slot in data.schedule],
        start_date=data.start_date,
        end_date=data.end_date,
        max_daily_mg=data.max_daily_mg,
        taper=data.taper,
        indication=data.indication,
        override_reason=data.override_reason,
        created_by=caller.user_id,
    )
    session.add(regimen)
    await session.flush()
    return RegimenWritten(**to_public(regimen).model_dump(), warnings=checked.warnings)


async def list_regimens(session: AsyncSession, patient: Patient) -> list[RegimenPublic]:
    rows = await session.execute(
        select(Regimen)
        .where(col(Regimen.patient_id) == patient.id)
        .order_by(col(Regimen.start_date), col(Regimen.created_at))
    )
    return [to_public(regimen) for regimen in rows.scalars()]


async def regimen_in_force(
    session: AsyncSession, patient_id: uuid.UUID, day: date, medication: str | None = None
) -> Regimen | None:
    """The regimen in force on a local day (the latest started, when several medications overlap)."""
    statement = select(Regimen).where(
        col(Regimen.patient_id) == patient_id,
        col(Regimen.start_date) <= day,
        or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= day),
    )
    if medication is not None:
        statement = statement.where(col(Regimen.medication) == medication)
    statement = statement.order_by(col(Regimen.start_date).desc(), col(Regimen.created_at).desc()).limit(1)
    return (await session.execute(statement)).scalars().first()


def to_public(regimen: Regimen | Row[*tuple[Any, ...]]) -> RegimenPublic:
    """From the ORM object, or a Core row of the regimen table's columns (the summary reads those)."""
    return RegimenPublic(
        id=regimen.id,
        patient_id=regimen.patient_id,
        medication=regimen.medication,
        rxnorm=regimen.rxnorm,
        schedule=[ScheduledDose(**slot) for slot in regimen.schedule],
        start_date=regimen.start_date,
        end_date=regimen.end_date,
        max_daily_mg=regimen.max_daily_mg,
        taper=regimen.taper,
        indication=regimen.indication,
        override_reason=regimen.override_reason,
        created_at=regimen.created_at,
    )


# ---- the regimen in force, for the write path --------------------------------------------------------


@dataclass(frozen=True)
class InForce:
    """What the write path needs of the regimen in force on a day: its medication, and what the dose
    rules read (the maximum, the schedule's daily total, whether the label maximum was overridden)."""

    medication: str
    max_daily_mg: float | None
    daily_mg: float = 0.0
    override: bool = False

    @classmethod
    def of(cls, row: Any) -> InForce:
        """From a row of `in_force_on`'s or `_COVERING`'s columns (or a regimen)."""
        return cls(row.medication, row.max_daily_mg, daily_mg(row.schedule), row.override_reason is not None)


def daily_mg(schedule: Iterable[Any]) -> float:
    """A schedule's daily total, from its stored JSON (or its models)."""
    return float(sum(slot["dose_mg"] if isinstance(slot, dict) else slot.dose_mg for slot in schedule))


# The regimen's columns the write path reads (InForce.of).
_IN_FORCE_COLUMNS = (
    col(Regimen.id),
    col(Regimen.medication),
    col(Regimen.max_daily_mg),
    col(Regimen.schedule),
    col(Regimen.override_reason),
)


def first_treatment_day(patient_id: Any) -> Select[*tuple[Any, ...]]:
    """The start of the patient's first regimen ever in force (one replaced before it began, ending
    before its start, never was): where the treatment baseline's search begins."""
    return select(func.min(col(Regimen.start_date))).where(
        col(Regimen.patient_id) == patient_id,
        or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= col(Regimen.start_date)),
    )


def treatment_baseline(patient_id: Any, *columns: Any) -> Select[*tuple[Any, ...]]:
    """The treatment baseline (CLINICAL.md 4): the first GAD-7 (not entered in error) on or after the
    start of the patient's first regimen (one ever in force: a regimen replaced before it began does
    not count), as `columns` of one row at most. A walk down the index on (patient_id, instrument,
    recorded_at). The one definition the anxiety rules and the summary share."""
    first_start = first_treatment_day(patient_id).scalar_subquery()
    return (
        select(*columns)
        .where(
            col(AnxietyScore.patient_id) == patient_id,
            col(AnxietyScore.instrument) == "gad7",
            col(AnxietyScore.entered_in_error_at).is_(None),
            col(AnxietyScore.local_date) >= first_start,
        )
        .order_by(col(AnxietyScore.recorded_at), col(AnxietyScore.id))
        .limit(1)
    )


def in_force_on(patient_id: Any, day: Any) -> Select[*tuple[Any, ...]]:
    """The regimen in force on a local day (the latest started), as Core: a statement or a subquery."""
    return (
        select(*_IN_FORCE_COLUMNS)
        .where(
            col(Regimen.patient_id) == patient_id,
            col(Regimen.start_date) <= day,
            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= day),
        )
        .order_by(col(Regimen.start_date).desc(), col(Regimen.created_at).desc())
        .limit(1)
    )


# Every regimen in force on some day of a range, the latest started first (as `in_force_on` orders).
_COVERING = (
    select(*_IN_FORCE_COLUMNS, col(Regimen.start_date), col(Regimen.end_date))
    .where(
        col(Regimen.patient_id) == bindparam("patient_id"),
        col(Regimen.start_date) <= bindparam("last"),
        or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= bindparam("first")),
    )
    .order_by(col(Regimen.start_date).desc(), col(Regimen.created_at).desc())
)


class RegimensInForce:
    """The regimen in force per patient and local day, fetched at most once per request: the dose's
    default medication and the dose rule's maximum read the same answer."""

    def __init__(self) -> None:
        self._known: dict[tuple[uuid.UUID, date], InForce | None] = {}

    def knows(self, patient_id: uuid.UUID, day: date) -> bool:
        return (patient_id, day) in self._known

    def known(self, patient_id: uuid.UUID, day: date) -> InForce | None:
        return self._known[(patient_id, day)]

    def remember(self, patient_id: uuid.UUID, day: date, regimen: InForce | None) -> None:
        self._known[(patient_id, day)] = regimen

    async def load(self, session: AsyncSession, patient_id: uuid.UUID, days: Iterable[date]) -> None:
        """Learns the regimen in force on each of these days in one query (a batch spans many days)."""
        wanted = sorted({day for day in days if not self.knows(patient_id, day)})
        if not wanted:
            return
        found = list(
            await session.execute(
                _COVERING, {"patient_id": patient_id, "first": wanted[0], "last": wanted[-1]}
            )
        )
        for day in wanted:
            regimen = next(
                (r for r in found if r.start_date <= day and (r.end_date is None or r.end_date >= day)), None
            )
            self.remember(patient_id, day, InForce.of(regimen) if regimen else None)
