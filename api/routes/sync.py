"""Offline sync of many entries at once."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SignedIn
from api.errors import problem_responses
from models.entry_schemas import SyncAnswer, SyncRequest
from services.entries import sync as sync_service

router = APIRouter(prefix="/v1", tags=["entries"])


@router.post(
    "/sync",
    summary="Upload up to 500 entries; each gets its own result, in order",
    response_model=SyncAnswer,
    responses=problem_responses(401),
)
async def sync(body: SyncRequest, signed_in: SignedIn) -> SyncAnswer:
    """Entries recorded offline, each `{type, patient_id, ...the fields of that kind's POST}`. Each is
    recorded as its own POST would be (201, 200 for an identical retry, 409, 422, 404), and one bad
    entry spoils none of the others: the answer has one result per entry, in order, each with the
    flags its entry raised (a retry: those its first write raised) and their advice, and the advice of
    the highest severity of the whole batch on top, for the app to show at once.

    The body is documented as a union discriminated by `type`, but an entry that is not a valid member
    does not make the request a 422: it gets its own 422 result (models.entry_schemas.SyncRequest)."""
    return await sync_service.sync(signed_in.session, signed_in.settings, signed_in.caller, body.entries)
