"""Loading what the write-time rules need: the new entries and just enough of the history around them.

Every query is bounded by the new entries' dates (a few days, 14 at most), so the cost does not grow
with the length of the patient's history. Entered-in-error entries are never loaded.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from services.clinical.rules import (
    DRESS_WINDOW_DAYS,
    WORSENING_WINDOW,
    CheckInObs,
    DoseObs,
    Gad7Obs,
    Snapshot,
    SymptomObs,
)
from services.prescribing.regimens import regimen_in_force
from services.settings import Settings


def check_in_obs(row: CheckIn) -> CheckInObs:
    return CheckInObs(row.id, row.local_date, dict(row.red_flags))


def symptom_obs(row: SymptomReport) -> SymptomObs:
    return SymptomObs(row.id, row.code, row.local_date, row.reported_at, row.grade, row.severity, row.present)


async def snapshot_for(
    session: AsyncSession, settings: Settings, patient: Patient, new_rows: list[Any]
) -> Snapshot:
    check_ins = [r for r in new_rows if isinstance(r, CheckIn)]
    symptoms = [r for r in new_rows if isinstance(r, SymptomReport)]
    gad7s = [r for r in new_rows if isinstance(r, AnxietyScore) and r.instrument == "gad7"]
    doses = [r for r in new_rows if isinstance(r, Dose) and r.status == "taken"]
    new_ids = {r.id for r in new_rows}
    snapshot = Snapshot(
        takes_opioids_or_benzodiazepines=patient.takes_opioids_or_benzodiazepines,
        creatinine_clearance_ml_min=patient.creatinine_clearance_ml_min,
        new_check_ins=[check_in_obs(r) for r in check_ins],
        new_symptoms=[symptom_obs(r) for r in symptoms],
        new_gad7=[Gad7Obs(r.id, r.recorded_at, r.total or 0) for r in gad7s],
        new_doses=[DoseObs(r.id, r.local_date, r.dose_mg) for r in doses],
    )
    dress_days = [c.local_date for c in check_ins] + [s.local_date for s in symptoms if s.code == "rash"]
    if dress_days:
        low = min(dress_days) - timedelta(days=DRESS_WINDOW_DAYS)
        high = max(dress_days) + timedelta(days=DRESS_WINDOW_DAYS)
        nearby = await session.execute(
            select(CheckIn).where(
                col(CheckIn.patient_id) == patient.id,
                col(CheckIn.local_date).between(low, high),
                col(CheckIn.entered_in_error_at).is_(None),
            )
        )
        snapshot.nearby_check_ins.extend(check_in_obs(r) for r in nearby.scalars() if r.id not in new_ids)
        rashes = await session.execute(
            select(SymptomReport).where(
                col(SymptomReport.patient_id) == patient.id,
                col(SymptomReport.code) == "rash",
                col(SymptomReport.local_date).between(low, high),
                col(SymptomReport.entered_in_error_at).is_(None),
            )
        )
        snapshot.nearby_symptoms.extend(symptom_obs(r) for r in rashes.scalars() if r.id not in new_ids)
    if symptoms:
        window = max(WORSENING_WINDOW, timedelta(days=settings.persistent_symptom_window_days))
        earliest = min(s.reported_at for s in symptoms) - window
        earlier = await session.execute(
            select(SymptomReport).where(
                col(SymptomReport.patient_id) == patient.id,
                col(SymptomReport.code).in_({s.code for s in symptoms}),
                col(SymptomReport.reported_at) >= earliest,
                col(SymptomReport.entered_in_error_at).is_(None),
            )
        )
        snapshot.earlier_symptoms.extend(symptom_obs(r) for r in earlier.scalars() if r.id not in new_ids)
    for gad7 in gad7s:
        previous = await session.execute(
            select(AnxietyScore)
            .where(
                col(AnxietyScore.patient_id) == patient.id,
                col(AnxietyScore.instrument) == "gad7",
                col(AnxietyScore.recorded_at) < gad7.recorded_at,
                col(AnxietyScore.entered_in_error_at).is_(None),
                col(AnxietyScore.id) != gad7.id,
            )
            .order_by(col(AnxietyScore.recorded_at).desc())
            .limit(1)
        )
        found = previous.scalars().first()
        if found is not None:
            snapshot.previous_gad7[gad7.id] = Gad7Obs(found.id, found.recorded_at, found.total or 0)
    days = sorted({d.local_date for d in doses})
    if days:
        taken = await session.execute(
            select(Dose).where(
                col(Dose.patient_id) == patient.id,
                col(Dose.local_date).in_(days),
                col(Dose.status) == "taken",
                col(Dose.entered_in_error_at).is_(None),
            )
        )
        by_day: dict[date, list[DoseObs]] = defaultdict(list)
        for row in taken.scalars():
            by_day[row.local_date].append(DoseObs(row.id, row.local_date, row.dose_mg))
        snapshot.doses_on_days.update(by_day)
        for day in days:
            regimen = await regimen_in_force(session, patient.id, day)
            snapshot.regimen_max_on_days[day] = regimen.max_daily_mg if regimen else None
    return snapshot
