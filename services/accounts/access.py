"""Who may see what: the one place that scopes every query over patient data to the caller.

A patient sees only themself, a provider only the patients on whose care team they are, an admin
their whole organization. Every read of patient data starts from `readable_patients` or
`readable_patient_ids`, so scope is built into the query rather than checked after it. Anything
outside the caller's scope is "not found": ids of other patients leak nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import CareTeamMember, Patient, Role, User
from services.errors import Forbidden, NotFound

ME = "me"


@dataclass(frozen=True)
class Caller:
    """The signed-in user a request acts for."""

    user_id: uuid.UUID
    role: Role
    organization_id: uuid.UUID
    family_id: uuid.UUID
    patient_id: uuid.UUID | None = None
    # For GET /v1/me without a query; never in a repr (a log line must not carry them).
    email: str = field(default="", repr=False, compare=False)
    name: str = field(default="", repr=False, compare=False)
    # A patient's own records, read with the caller and kept with it (cleared when they change), so
    # the phone's requests need no scope query. Shared between requests: read them, never change them.
    own_records: tuple[Patient, User] | None = field(default=None, repr=False, compare=False)

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.admin, Role.provider)


def readable_patients(caller: Caller) -> Select[Patient]:
    """Every patient the caller may see, as a statement to refine further."""
    statement = select(Patient).where(col(Patient.organization_id) == caller.organization_id)
    if caller.role == Role.admin:
        return statement
    if caller.role == Role.provider:
        on_care_team = exists().where(
            col(CareTeamMember.patient_id) == col(Patient.id),
            col(CareTeamMember.provider_id) == caller.user_id,
        )
        return statement.where(on_care_team)
    return statement.where(col(Patient.id) == caller.patient_id)


def readable_patient_ids(caller: Caller) -> Select[uuid.UUID]:
    """The ids of `readable_patients`, to scope any table that has a patient_id column:
    `.where(Entry.patient_id.in_(readable_patient_ids(caller)))`."""
    return readable_patients(caller).with_only_columns(col(Patient.id))


def parse_patient_ref(caller: Caller, ref: str) -> uuid.UUID | None:
    """`me` stands for the caller's own patient id; anything not a UUID names no patient."""
    if ref == ME:
        return caller.patient_id
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


async def patient_in_scope(
    session: AsyncSession, caller: Caller, ref: str, *, to_change: bool = False
) -> tuple[Patient, User]:
    """The patient and their user account, if the caller may see them; otherwise NotFound.
    `to_change`: read them in this session, never the caller's shared copy, because they will change."""
    patient_id = parse_patient_ref(caller, ref)
    # A patient's scope is their own id, known with the caller: anyone else's is not found, unasked.
    if patient_id is None or (caller.role == Role.patient and patient_id != caller.patient_id):
        raise NotFound("No such patient.")
    if caller.own_records is not None and not to_change:
        return caller.own_records
    statement = (
        readable_patients(caller)
        .add_columns(User)
        .join(User, col(User.id) == col(Patient.user_id))
        .where(col(Patient.id) == patient_id)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFound("No such patient.")
    return row[0], row[1]


def require_role(caller: Caller, *roles: Role) -> None:
    """For actions (not reads) reserved to some roles: the caller may see the thing but not do this."""
    if caller.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise Forbidden(f"Only a {allowed} may do this.")


async def provider_ids_of(
    session: AsyncSession, patient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Care teams of patients the caller already may see."""
    if not patient_ids:
        return {}
    rows = await session.execute(
        select(col(CareTeamMember.patient_id), col(CareTeamMember.provider_id))
        .where(col(CareTeamMember.patient_id).in_(patient_ids))
        .order_by(col(CareTeamMember.created_at), col(CareTeamMember.provider_id))
    )
    teams: dict[uuid.UUID, list[uuid.UUID]] = {pid: [] for pid in patient_ids}
    for patient_id, provider_id in rows:
        teams[patient_id].append(provider_id)
    return teams
