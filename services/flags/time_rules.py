"""The periodic job for rules that depend on time passing, not on a new entry (CLINICAL.md 4):
abrupt_stop and missed_check_ins.

Safe to run twice and on several workers at once: a lapse is identified by its episode (the last dose
or check-in before it), a flag is raised once per episode, and the unique index on active flags makes
concurrent runs meet on one flag.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.accounts import Patient
from models.base import utcnow
from models.entries import CheckIn, Dose
from models.regimens import Regimen
from services.clinical.rules import RegimenObs, abrupt_stop, missed_check_ins
from services.database import session_scope
from services.flags import lifecycle as flags
from services.localtime import local_date
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
            statement = (
                select(Patient)
                .where(
                    col(Patient.id).in_(
                        select(col(Regimen.patient_id)).where(
                            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= horizon)
                        )
                    )
                )
                .order_by(col(Patient.id))
                .limit(BATCH)
            )
            if after is not None:
                statement = statement.where(col(Patient.id) > after)
            patients = list((await session.execute(statement)).scalars())
            for patient in patients:
                touched += await _evaluate_patient(session, settings, patient, now)
        if len(patients) < BATCH:
            return touched
        after = patients[-1].id


async def _evaluate_patient(
    session: AsyncSession, settings: Settings, patient: Patient, now: datetime
) -> int:
    today = local_date(now, patient.timezone)
    regimen_rows = await session.execute(select(Regimen).where(col(Regimen.patient_id) == patient.id))
    regimens = [RegimenObs(r.id, r.start_date, r.end_date, r.taper) for r in regimen_rows.scalars()]
    last_dose = await session.scalar(
        select(func.max(Dose.local_date)).where(
            col(Dose.patient_id) == patient.id,
            col(Dose.status) == "taken",
            col(Dose.entered_in_error_at).is_(None),
        )
    )
    last_check_in = await session.scalar(
        select(func.max(CheckIn.local_date)).where(
            col(CheckIn.patient_id) == patient.id,
            col(CheckIn.entered_in_error_at).is_(None),
        )
    )
    findings = [
        abrupt_stop(today, regimens, last_dose, settings.abrupt_stop_days),
        missed_check_ins(today, regimens, last_check_in, settings.missed_check_in_days),
    ]
    touched = 0
    for finding in findings:
        if finding is not None and await flags.apply_finding(session, patient, finding) is not None:
            touched += 1
    return touched


async def time_rules_job(factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    return await evaluate_time_rules(factory, settings)
