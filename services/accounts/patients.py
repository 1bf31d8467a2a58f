"""Patients and providers as staff manage them, always within the caller's scope."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import (
    CareTeamMember,
    Patient,
    PatientCreate,
    PatientCreated,
    PatientPublic,
    PatientUpdate,
    ProviderCreate,
    ProviderPublic,
    Role,
    User,
)
from models.base import utcnow
from models.common import Page
from services.accounts import audit, caller_cache
from services.accounts import users as accounts
from services.accounts.access import Caller, provider_ids_of, readable_patients, require_role
from services.accounts.auth import issue_enrollment_code
from services.errors import FieldError, Forbidden, ValidationFailed
from services.pagination import Cursor, page_of
from services.settings import Settings

# What a patient may change about themself; every other field is clinical and set by their care team.
PATIENT_EDITABLE_FIELDS = frozenset({"timezone"})


def to_public(patient: Patient, user: User, provider_ids: list[uuid.UUID]) -> PatientPublic:
    return PatientPublic(
        id=patient.id,
        user_id=user.id,
        organization_id=patient.organization_id,
        email=user.email,
        name=user.name,
        timezone=patient.timezone,
        birth_year=patient.birth_year,
        takes_opioids_or_benzodiazepines=patient.takes_opioids_or_benzodiazepines,
        takes_other_cns_depressants=patient.takes_other_cns_depressants,
        has_lung_disease=patient.has_lung_disease,
        creatinine_clearance_ml_min=patient.creatinine_clearance_ml_min,
        provider_ids=provider_ids,
        enrolled=user.password_hash is not None,
        active=user.is_active,
        created_at=patient.created_at,
        updated_at=patient.updated_at,
    )


async def _check_providers(session: AsyncSession, caller: Caller, provider_ids: list[uuid.UUID]) -> None:
    """Care teams are made of active providers of the caller's own organization."""
    wanted = set(provider_ids)
    if not wanted:
        return
    found = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            col(User.id).in_(wanted),
            col(User.organization_id) == caller.organization_id,
            col(User.role) == Role.provider.value,
            col(User.is_active),
        )
    )
    if found != len(wanted):
        raise ValidationFailed(
            [FieldError(("body", "provider_ids"), "every id must be an active provider of your organization")]
        )


async def create_patient(
    session: AsyncSession, settings: Settings, caller: Caller, data: PatientCreate
) -> PatientCreated:
    require_role(caller, Role.provider, Role.admin)
    provider_ids = list(dict.fromkeys(data.provider_ids or []))
    if caller.role == Role.provider and caller.user_id not in provider_ids:
        # A provider who enrolls a patient cares for them; otherwise they could not see their own patient.
        provider_ids.insert(0, caller.user_id)
    await _check_providers(session, caller, provider_ids)
    patient = await accounts.create_patient(
        session,
        organization_id=caller.organization_id,
        email=data.email,
        name=data.name,
        timezone=data.timezone,
        provider_ids=provider_ids,
        birth_year=data.birth_year,
        takes_opioids_or_benzodiazepines=data.takes_opioids_or_benzodiazepines,
        takes_other_cns_depressants=data.takes_other_cns_depressants,
        has_lung_disease=data.has_lung_disease,
        creatinine_clearance_ml_min=data.creatinine_clearance_ml_min,
    )
    code, expires_at = await issue_enrollment_code(session, settings, patient.id, caller.user_id)
    await audit.record(session, caller, "POST /v1/patients", [patient.id])
    user = await session.get_one(User, patient.user_id)
    public = to_public(patient, user, provider_ids)
    return PatientCreated(**public.model_dump(), enrollment_code=code, enrollment_code_expires_at=expires_at)


async def list_patients(
    session: AsyncSession, caller: Caller, limit: int, cursor: str | None
) -> Page[PatientPublic]:
    require_role(caller, Role.provider, Role.admin)
    statement = readable_patients(caller).add_columns(User).join(User, col(User.id) == col(Patient.user_id))
    rows, next_cursor = await page_of(
        session,
        statement,
        Cursor.decode(cursor),
        limit,
        time_column=col(Patient.created_at),
        id_column=col(Patient.id),
        cursor_of=lambda row: Cursor(row[0].created_at, row[0].id),
    )
    teams = await provider_ids_of(session, [patient.id for patient, _ in rows])
    audit.defer(session, caller, "GET /v1/patients", [patient.id for patient, _ in rows])
    return Page(
        items=[to_public(patient, user, teams[patient.id]) for patient, user in rows], next_cursor=next_cursor
    )


async def get_patient(session: AsyncSession, patient: Patient, user: User) -> PatientPublic:
    """`patient` comes from access.patient_in_scope (the route's PatientInScope dependency)."""
    teams = await provider_ids_of(session, [patient.id])
    return to_public(patient, user, teams[patient.id])


async def update_patient(
    session: AsyncSession, caller: Caller, patient: Patient, user: User, data: PatientUpdate
) -> PatientPublic:
    """`patient` comes from access.patient_in_scope (the route's PatientInScope dependency)."""
    changes = data.model_dump(exclude_unset=True)
    if caller.role == Role.patient and (refused := sorted(set(changes) - PATIENT_EDITABLE_FIELDS)):
        raise Forbidden(f"A patient may change only their timezone, not: {', '.join(refused)}.")
    errors: list[FieldError] = []
    for required in (
        "name",
        "timezone",
        "takes_opioids_or_benzodiazepines",
        "takes_other_cns_depressants",
        "has_lung_disease",
        "provider_ids",
    ):
        if required in changes and changes[required] is None:
            errors.append(FieldError(("body", required), "may not be null"))
    if changes.get("timezone") is not None and not accounts.is_valid_timezone(changes["timezone"]):
        errors.append(FieldError(("body", "timezone"), "is not an IANA time zone"))
    if errors:
        raise ValidationFailed(errors)
    if "provider_ids" in changes:
        provider_ids = list(dict.fromkeys(changes.pop("provider_ids")))
        await _check_providers(session, caller, provider_ids)
        await session.execute(delete(CareTeamMember).where(col(CareTeamMember.patient_id) == patient.id))
        session.add_all(CareTeamMember(patient_id=patient.id, provider_id=pid) for pid in provider_ids)
    if "name" in changes:
        user.name = changes.pop("name").strip()
        session.add(user)
    # Every process drops what it kept of this user (the name /v1/me shows, the patient's own records
    # their requests are served from) once this commits.
    await caller_cache.announce(session, caller_cache.USER, user.id)
    for field, value in changes.items():
        setattr(patient, field, value)
    patient.updated_at = utcnow()
    session.add(patient)
    await session.flush()
    teams = await provider_ids_of(session, [patient.id])
    return to_public(patient, user, teams[patient.id])


async def create_provider(session: AsyncSession, caller: Caller, data: ProviderCreate) -> ProviderPublic:
    require_role(caller, Role.admin)
    user = await accounts.create_user(
        session,
        organization_id=caller.organization_id,
        email=data.email,
        name=data.name,
        role=Role.provider,
        password=data.password,
    )
    return provider_public(user)


async def list_providers(session: AsyncSession, caller: Caller) -> list[ProviderPublic]:
    require_role(caller, Role.admin, Role.provider)
    rows = await session.execute(
        select(User)
        .where(col(User.organization_id) == caller.organization_id, col(User.role) == Role.provider.value)
        .order_by(col(User.name), col(User.id))
    )
    return [provider_public(user) for user in rows.scalars()]


def provider_public(user: User) -> ProviderPublic:
    return ProviderPublic(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        organization_id=user.organization_id,
        active=user.is_active,
        created_at=user.created_at,
    )
