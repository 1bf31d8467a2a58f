"""Entries as the API shows them: stored (the models' objects) or just written (services/entries/rows.py,
read alike)."""

from __future__ import annotations

from typing import Any

from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.entry_schemas import AnxietyPublic, CheckInPublic, DosePublic, SymptomPublic
from services.localtime import utc


def _common(row: Dose | AnxietyScore | SymptomReport | CheckIn | Any) -> dict[str, object]:
    return {
        "id": row.id,
        "patient_id": row.patient_id,
        "local_date": row.local_date,
        "created_at": utc(row.created_at),
        "entered_in_error": row.entered_in_error_at is not None,
        "entered_in_error_at": utc(row.entered_in_error_at),
    }


def dose(row: Dose | Any) -> DosePublic:
    return DosePublic(
        **_common(row),
        taken_at=utc(row.taken_at),
        dose_mg=row.dose_mg,
        medication=row.medication,
        status=row.status,
        scheduled_for=utc(row.scheduled_for),
        note=row.note,
        check_in_id=row.check_in_id,
    )


def anxiety(row: AnxietyScore | Any) -> AnxietyPublic:
    return AnxietyPublic(
        **_common(row),
        recorded_at=utc(row.recorded_at),
        instrument=row.instrument,
        items=row.items,
        total=row.total,
        band=row.band,
        score=row.score,
        check_in_id=row.check_in_id,
    )


def symptom(row: SymptomReport | Any) -> SymptomPublic:
    return SymptomPublic(
        **_common(row),
        reported_at=utc(row.reported_at),
        code=row.code,
        frequency=row.frequency,
        severity=row.severity,
        interference=row.interference,
        present=row.present,
        grade=row.grade,
        note=row.note,
        check_in_id=row.check_in_id,
    )


def check_in(row: CheckIn | Any, doses: list[Any], symptoms: list[Any], scores: list[Any]) -> CheckInPublic:
    return CheckInPublic(
        **_common(row),
        date=row.local_date,
        submitted_at=utc(row.submitted_at),
        red_flags=row.red_flags,
        note=row.note,
        anxiety=[anxiety(score) for score in sorted(scores, key=lambda s: s.instrument)],
        doses=[dose(d) for d in sorted(doses, key=lambda d: (d.taken_at, d.id))],
        symptoms=[symptom(s) for s in sorted(symptoms, key=lambda s: (s.reported_at, s.id))],
    )
