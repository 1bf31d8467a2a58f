"""Closing and reopening accounts: an admin deactivates a user of their organization (staff or patient)
when their access must end, and may reactivate them later.

Deactivating ends access at once and everywhere: the account is marked inactive (sign-in, refresh and
enrollment refuse it), every session it holds is revoked, and every API process drops what it kept of
the user, this one as the transaction commits, the others by the NOTIFY that commits with it
(caller_cache). The answer leaves after the commit, so once it is given no process serves the user's
tokens (the others as soon as they hear the notification, milliseconds later). Reactivating lets the
user sign in again; the sessions ended stay ended. Nothing the user recorded or did is removed.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import AccountStatus, Patient, Role, User
from models.auth import TokenFamily
from models.base import utcnow
from services.accounts import audit, caller_cache
from services.accounts.access import Caller
from services.errors import Conflict, NotFound

DEACTIVATE = "POST /v1/users/{user_id}/deactivate"
REACTIVATE = "POST /v1/users/{user_id}/reactivate"
REVOKED_REASON = "deactivated"


async def deactivate_user(session: AsyncSession, caller: Caller, user_id: uuid.UUID) -> AccountStatus:
    user, patient_id = await _user_in_organization(session, caller, user_id)
    if user.id == caller.user_id:
        # 409, not 422: the request is well formed; it conflicts with who is asking. An admin locked
        # out by their own hand could not undo it, and the organization always keeps this one admin.
        raise Conflict("An admin can't deactivate their own account; another admin of the organization can.")
    now = utcnow()
    if user.is_active:
        user.is_active = False
        user.deactivated_at = now
        session.add(user)
        await session.flush()
    # Every session ends for good: reactivation lets the user sign in anew, not resume these.
    await session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.user_id) == user.id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=now, revoked_reason=REVOKED_REASON)
    )
    await caller_cache.announce(session, caller_cache.USER, user.id)
    await audit.record_account_action(session, caller, DEACTIVATE, user.id, patient_id)
    return _status(user, patient_id)


async def reactivate_user(session: AsyncSession, caller: Caller, user_id: uuid.UUID) -> AccountStatus:
    user, patient_id = await _user_in_organization(session, caller, user_id)
    if not user.is_active:
        user.is_active = True
        user.deactivated_at = None
        session.add(user)
        await session.flush()
        await caller_cache.announce(session, caller_cache.USER, user.id)
    await audit.record_account_action(session, caller, REACTIVATE, user.id, patient_id)
    return _status(user, patient_id)


async def _user_in_organization(
    session: AsyncSession, caller: Caller, user_id: uuid.UUID
) -> tuple[User, uuid.UUID | None]:
    """The user and, for a patient, their patient id. Accounts are an admin's to see: anyone else,
    and an admin of another organization, gets "not found", as for an unknown id."""
    if caller.role != Role.admin:
        raise NotFound("No such user.")
    row = (
        await session.execute(
            select(User, col(Patient.id))
            .outerjoin(Patient, col(Patient.user_id) == col(User.id))
            .where(col(User.id) == user_id, col(User.organization_id) == caller.organization_id)
            # Two admins acting on one account at once: one after the other (PostgreSQL).
            .with_for_update(of=User)
        )
    ).first()
    if row is None:
        raise NotFound("No such user.")
    return row[0], row[1]


def _status(user: User, patient_id: uuid.UUID | None) -> AccountStatus:
    return AccountStatus(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        organization_id=user.organization_id,
        patient_id=patient_id,
        active=user.is_active,
        deactivated_at=user.deactivated_at,
    )
