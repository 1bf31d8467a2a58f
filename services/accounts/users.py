"""Creating organizations, staff and patients. Services flush; the caller's unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import CareTeamMember, Me, Organization, Patient, Role, User
from services.accounts.access import Caller
from services.accounts.passwords import hash_password, password_problem
from services.errors import Conflict, FieldError, ValidationFailed


def normalize_email(email: str) -> str:
    return email.strip().lower()


# Names the tz database carries that are not places: they would date a patient's days by the server.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


def is_valid_timezone(name: str) -> bool:
    if not name or name in _NOT_PLACES or name not in _zone_names():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


async def create_organization(session: AsyncSession, name: str) -> Organization:
    if not name.strip():
        raise ValidationFailed([FieldError(("organization",), "must not be empty")])
    organization = Organization(name=name.strip())
    session.add(organization)
    await session.flush()
    return organization


async def find_organization_by_name(session: AsyncSession, name: str) -> Organization | None:
    result = await session.execute(select(Organization).where(col(Organization.name) == name.strip()))
    return result.scalars().first()


async def create_user(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    email: str,
    name: str,
    role: Role,
    password: str | None,
) -> User:
    email = normalize_email(email)
    errors: list[FieldError] = []
    if "@" not in email or len(email) > 320:
        errors.append(FieldError(("email",), "is not a valid email address"))
    if password is not None and (problem := password_problem(password)):
        errors.append(FieldError(("password",), problem))
    if errors:
        raise ValidationFailed(errors)
    if await email_taken(session, email):
        raise Conflict("An account with this email already exists.")
    user = User(
        organization_id=organization_id,
        email=email,
        name=name.strip(),
        role=role.value,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request took the email between check and insert
        raise Conflict("An account with this email already exists.") from exc
    return user


async def email_taken(session: AsyncSession, email: str) -> bool:
    query = select(func.count()).select_from(User).where(col(User.email) == normalize_email(email))
    return bool(await session.scalar(query))


async def create_patient(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    email: str,
    name: str,
    timezone: str,
    provider_ids: Iterable[uuid.UUID] = (),
    birth_year: int | None = None,
    takes_opioids_or_benzodiazepines: bool = False,
    takes_other_cns_depressants: bool = False,
    has_lung_disease: bool = False,
    creatinine_clearance_ml_min: float | None = None,
    password: str | None = None,
) -> Patient:
    if not is_valid_timezone(timezone):
        raise ValidationFailed([FieldError(("timezone",), "is not an IANA time zone")])
    user = await create_user(
        session,
        organization_id=organization_id,
        email=email,
        name=name,
        role=Role.patient,
        password=password,
    )
    patient = Patient(
        user_id=user.id,
        organization_id=organization_id,
        timezone=timezone,
        birth_year=birth_year,
        takes_opioids_or_benzodiazepines=takes_opioids_or_benzodiazepines,
        takes_other_cns_depressants=takes_other_cns_depressants,
        has_lung_disease=has_lung_disease,
        creatinine_clearance_ml_min=creatinine_clearance_ml_min,
    )
    session.add(patient)
    await session.flush()
    for provider_id in dict.fromkeys(provider_ids):
        session.add(CareTeamMember(patient_id=patient.id, provider_id=provider_id))
    await session.flush()
    return patient


def describe_caller(caller: Caller) -> Me:
    """From the authenticated caller alone: GET /v1/me asks the database nothing more."""
    return Me(
        id=caller.user_id,
        email=caller.email,
        name=caller.name,
        role=caller.role,
        organization_id=caller.organization_id,
        patient_id=caller.patient_id,
    )
