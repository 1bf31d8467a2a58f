"""The provider triage queue, and the flag lifecycle open -> acknowledged -> resolved."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CursorParam, Limit, PatientInScope, SignedIn
from api.errors import problem_responses
from api.routes.patients import patient_router
from models.common import Page
from models.flags import AcknowledgeRequest, FlagPublic, FlagStatus, ResolveRequest, Severity
from services.flags import lifecycle as flags
from services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/flags", tags=["flags"])


@router.get(
    "",
    summary="Flags the caller may see, in triage order (provider: their patients; admin: the "
    "organization; patient: their own)",
    response_model=Page[FlagPublic],
    responses=problem_responses(401),
)
async def list_flags(
    signed_in: SignedIn,
    status: Annotated[FlagStatus | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    patient_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[FlagPublic]:
    """The triage queue: open before acknowledged (then resolved), most severe first, then the oldest
    `observed_at` (when the evidence happened). Staff see each flag's `patient_name`. Filter by
    `status`, `severity` and `patient_id`. A page at a time: pass `next_cursor` back as `cursor`."""
    return await flags.list_flags(
        signed_in.session,
        signed_in.caller,
        status=status,
        severity=severity,
        patient_id=patient_id,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/{flag_id}", summary="One flag", response_model=FlagPublic, responses=problem_responses(401, 404)
)
async def get_flag(flag_id: uuid.UUID, signed_in: SignedIn) -> FlagPublic:
    """A flag the caller may see; any other id answers 404."""
    return await flags.get_flag(signed_in.session, signed_in.caller, flag_id)


@router.post(
    "/{flag_id}/acknowledge",
    summary="Acknowledge a flag (provider, admin)",
    response_model=FlagPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def acknowledge(
    flag_id: uuid.UUID, signed_in: SignedIn, body: AcknowledgeRequest | None = None
) -> FlagPublic:
    """Moves an open flag to acknowledged: a clinician has seen it. The note is optional and kept in
    the flag's `history`. An acknowledged flag stays as it is (a retry is harmless); a resolved one
    answers 409. A later urgent finding reopens it (`flag.reopened`)."""
    return await flags.acknowledge(signed_in.session, signed_in.caller, flag_id, body or AcknowledgeRequest())


@router.post(
    "/{flag_id}/resolve",
    summary="Resolve a flag with a note (provider, admin)",
    response_model=FlagPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def resolve(flag_id: uuid.UUID, body: ResolveRequest, signed_in: SignedIn) -> FlagPublic:
    """Moves an open or acknowledged flag to resolved; the note says what was done. A resolved flag
    answers 409."""
    return await flags.resolve(signed_in.session, signed_in.caller, flag_id, body)


@patient_router.get(
    "/flags",
    summary="A patient's flags, in triage order",
    response_model=Page[FlagPublic],
    tags=["flags"],
)
async def list_patient_flags(
    scoped: PatientInScope,
    status: Annotated[FlagStatus | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[FlagPublic]:
    """The patient's flags (`me` for the caller's own), filtered by `status`, a page at a time."""
    return await flags.list_flags(
        scoped.session,
        scoped.caller,
        status=status,
        severity=None,
        patient_id=scoped.patient.id,
        limit=limit,
        cursor=cursor,
    )
