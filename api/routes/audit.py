"""The audit trail, for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CursorParam, Limit, SignedIn
from api.errors import problem_responses
from models.audit_schemas import AuditEventPublic
from models.common import Page
from services.accounts import audit_log as audit_trail
from services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get(
    "/audit",
    summary="Who read or wrote a patient's data, when, and how it ended (admin), oldest first",
    response_model=Page[AuditEventPublic],
    responses=problem_responses(401, 403, 404),
)
async def audit(
    signed_in: SignedIn,
    patient_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[AuditEventPublic]:
    """The audit trail of the admin's organization, oldest first, optionally for one patient: every
    read and write of a patient's data, by whom, and how it ended."""
    return await audit_trail.list_events(signed_in.session, signed_in.caller, patient_id, limit, cursor)
