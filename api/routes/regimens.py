"""Regimens of a patient (provider, admin write; the patient and their team read)."""

from __future__ import annotations

from api.deps import PatientInScope
from api.errors import problem_responses
from api.routes.patients import patient_router
from models.regimens import RegimenCreate, RegimenPublic, RegimenWritten
from services.prescribing import regimens

router = patient_router  # every route here is scoped to a patient the caller may see


@router.post(
    "/regimens",
    summary="Start a regimen; the previous one for the medication ends the day before (provider, admin)",
    status_code=201,
    response_model=RegimenWritten,
    responses=problem_responses(403),
    tags=["regimens"],
)
async def create_regimen(body: RegimenCreate, scoped: PatientInScope) -> RegimenWritten:
    """What the prescriber ordered: the daily schedule in the patient's wall-clock time, from
    `start_date`. A regimen in force for the same medication ends the day before this one starts.
    A schedule above the label maximum for the patient's creatinine clearance (or 3600 mg a day) needs
    `override_reason`, and none may exceed its own `max_daily_mg` (else 422 on `schedule`); `warnings`
    says what the prescriber should know (a patient of 65 or over with no creatinine clearance)."""
    return await regimens.create_regimen(scoped.session, scoped.caller, scoped.patient, body)


@router.get(
    "/regimens",
    summary="A patient's regimens, oldest first",
    response_model=list[RegimenPublic],
    tags=["regimens"],
)
async def list_regimens(scoped: PatientInScope) -> list[RegimenPublic]:
    """Every regimen of the patient, past and present, oldest first."""
    return await regimens.list_regimens(scoped.session, scoped.patient)
