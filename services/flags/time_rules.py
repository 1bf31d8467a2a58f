"""The periodic job for rules that depend on time passing, not on a new entry (CLINICAL.md 4):
abrupt_stop and missed_check_ins.

Safe to run twice and on several workers at once: a lapse is identified by its episode (the last dose
or check-in before it), a flag is raised once per episode, and the unique index on active flags makes
concurrent runs meet on one flag.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.accounts import Patient
from models.base import utcnow
from models.entries import CheckIn, Dose
from models.regimens import Regimen
from services.clinical.rules import RegimenObs, abrupt_stop, missed_check_ins
from services.database import session_scope
from services.flags import lifecycle as flags
from services.localtime import day_bounds, local_date
from services.settings import Settings

BATCH = 200
INTERVAL_SECONDS = 15 * 60


async def evaluate_time_rules(
    factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> int:
    """One pass over every patient with a regimen that may be active. Returns how many flags were
    raised or added to. A transaction per batch keeps locks short."""
    now = now or utcnow()
    # A day of margin either side of any zone's "today".
    horizon = (now - timedelta(days=max(settings.abrupt_stop_days, settings.missed_check_in_days) + 2)).date()
    touched = 0
    after: uuid.UUID | None = None
    while True:
        async with session_scope(factory) as session:
            in_force = or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= horizon)
            # Both sides start after the last batch, so each batch reads its own stretch of the two
            # indexes (without the regimen's bound, every batch rescanned it from the start).
            if after is not None:
                in_force = in_force & (col(Regimen.patient_id) > after)
            statement = (
                select(Patient)
                .where(col(Patient.id).in_(select(col(Regimen.patient_id)).where(in_force)))
                .order_by(col(Patient.id))
                .limit(BATCH)
            )
            if after is not None:
                statement = statement.where(col(Patient.id) > after)
            patients = list((await session.execute(statement)).scalars())
            touched += await _evaluate_batch(session, settings, patients, now)
        if len(patients) < BATCH:
            return touched
        after = patients[-1].id


async def _evaluate_batch(
    session: AsyncSession, settings: Settings, patients: list[Patient], now: datetime
) -> int:
    """The batch's inputs in two queries (not three per patient), then the pure rules."""
    if not patients:
        return 0
    ids = [patient.id for patient in patients]
    regimens: dict[uuid.UUID, list[RegimenObs]] = {}
    for r in (await session.execute(select(Regimen).where(col(Regimen.patient_id).in_(ids)))).scalars():
        regimens.setdefault(r.patient_id, []).append(RegimenObs(r.id, r.start_date, r.end_date, r.taper))
    latest = {row.id: row for row in await session.execute(_LATEST_DOSE_AND_CHECK_IN, {"ids": ids})}
    last_doses = {pid: row.last_dose for pid, row in latest.items() if row.last_dose is not None}
    last_check_ins = {pid: row.last_check_in for pid, row in latest.items() if row.last_check_in is not None}
    touched = 0
    for patient in patients:
        today = local_date(now, patient.timezone)
        mine = regimens.get(patient.id, [])
        findings = [
            abrupt_stop(today, mine, last_doses.get(patient.id), settings.abrupt_stop_days),
            missed_check_ins(today, mine, last_check_ins.get(patient.id), settings.missed_check_in_days),
        ]
        # A lapse is complete when the patient's day starts: that is when it is charted.
        day_start = day_bounds(today, patient.timezone)[0]
        observed = flags.Observed(day_start, day_start, day_start)
        for finding in findings:
            if finding is None:
                continue
            if await flags.apply_finding(session, settings, patient, finding, observed) is not None:
                touched += 1
    return touched


def _latest_date(model: Any, *where: Any) -> Any:
    """A patient's latest local date in `model`, as a correlated subquery: read backwards along the
    (patient_id, local_date) index, one row per patient, however long their history."""
    return (
        select(col(model.local_date))
        .where(col(model.patient_id) == col(Patient.id), col(model.entered_in_error_at).is_(None), *where)
        .order_by(col(model.local_date).desc())
        .limit(1)
        .scalar_subquery()
    )


# The batch's last taken dose and last check-in per patient, in one statement. Built once.
_LATEST_DOSE_AND_CHECK_IN = select(
    col(Patient.id),
    _latest_date(Dose, col(Dose.status) == "taken").label("last_dose"),
    _latest_date(CheckIn).label("last_check_in"),
).where(col(Patient.id).in_(bindparam("ids", expanding=True)))


async def time_rules_job(factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    return await evaluate_time_rules(factory, settings)
