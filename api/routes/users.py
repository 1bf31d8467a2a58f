"""User accounts of the caller's organization: closing and reopening them (admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import SignedIn
from api.errors import problem_responses
from models.accounts import AccountStatus
from services.accounts import deactivation

router = APIRouter(prefix="/v1/users", tags=["accounts"])


@router.post(
    "/{user_id}/deactivate",
    summary="Deactivate a user: no sign-in, and every session they hold ends at once (admin)",
    response_model=AccountStatus,
    responses=problem_responses(401, 404, 409),
)
async def deactivate_user(user_id: uuid.UUID, signed_in: SignedIn) -> AccountStatus:
    """A user of the admin's organization, staff or patient, can no longer sign in, refresh or enroll,
    and every access token they hold is refused from the moment this answers, by every API process.
    Their records stay. A user of another organization, or an unknown id, answers 404; an admin's own
    account answers 409 (another admin may close it). Deactivating an inactive user changes nothing."""
    return await deactivation.deactivate_user(signed_in.session, signed_in.caller, user_id)


@router.post(
    "/{user_id}/reactivate",
    summary="Let a deactivated user sign in again (admin)",
    response_model=AccountStatus,
    responses=problem_responses(401, 404),
)
async def reactivate_user(user_id: uuid.UUID, signed_in: SignedIn) -> AccountStatus:
    """The user may sign in again; the sessions that ended when they were deactivated stay ended.
    Reactivating an active user changes nothing."""
    return await deactivation.reactivate_user(signed_in.session, signed_in.caller, user_id)
