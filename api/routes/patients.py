"""Patients. Everything under /v1/patients/{patient_id} hangs on `patient_router`, whose dependency
resolves the patient within the caller's scope (404 otherwise) and audits the access: a route added
there cannot forget the check."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import (
    CursorParam,
    Limit,
    PatientInScope,
    SignedIn,
    patient_in_scope_dependency,
)
from api.errors import problem_responses
from models.accounts import PatientCreate, PatientCreated, PatientPublic, PatientUpdate
from models.common import Page
from services.accounts import patients
from services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/patients", tags=["patients"])
patient_router = APIRouter(
    prefix="/v1/patients/{patient_id}",
    tags=["patients"],
    # The same dependency as the routes' `PatientInScope` (solved once): no route here can forget it.
    dependencies=[Depends(patient_in_scope_dependency, scope="function")],
    responses=problem_responses(401, 404),
)


@router.post(
    "",
    summary="Register a patient; the answer carries their one-time enrollment code (provider, admin)",
    status_code=201,
    response_model=PatientCreated,
    responses=problem_responses(401, 403, 409),
)
async def create_patient(body: PatientCreate, signed_in: SignedIn) -> PatientCreated:
    """Registers a patient of the caller's organization, on the care team of `provider_ids` (a provider
    registering is added). The answer's `enrollment_code` is shown this once: the patient sets their
    password with it (POST /v1/auth/enroll)."""
    return await patients.create_patient(signed_in.session, signed_in.settings, signed_in.caller, body)


@router.get(
    "",
    summary="The caller's patients (provider: their care team's; admin: the organization's)",
    response_model=Page[PatientPublic],
    responses=problem_responses(401, 403),
)
async def list_patients(
    signed_in: SignedIn, limit: Limit = DEFAULT_LIMIT, cursor: CursorParam = None
) -> Page[PatientPublic]:
    """A provider sees the patients on whose care team they are; an admin, the organization's."""
    return await patients.list_patients(signed_in.session, signed_in.caller, limit, cursor)


@patient_router.get(
    "", summary="One patient (`me` for the caller's own record)", response_model=PatientPublic
)
async def get_patient(scoped: PatientInScope) -> PatientPublic:
    """`me` stands for the caller's own patient record. A patient the caller may not see answers 404."""
    return await patients.get_patient(scoped.session, scoped.patient, scoped.user)


@patient_router.patch(
    "",
    summary="Change a patient's profile; a patient may change only their own timezone",
    response_model=PatientPublic,
    responses=problem_responses(403),
)
async def update_patient(body: PatientUpdate, scoped: PatientInScope) -> PatientPublic:
    """Only the fields sent change. Staff may change the profile and the care team; a patient may send
    only `timezone` (their local dates follow it from then on)."""
    return await patients.update_patient(scoped.session, scoped.caller, scoped.patient, scoped.user, body)
