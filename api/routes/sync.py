"""Offline sync of many entries at once."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CallerDep, SessionDep, SettingsDep
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
async def sync(
    body: SyncRequest, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> SyncAnswer:
    """Entries recorded offline, each `{type, patient_id, ...the fields of that kind's POST}`. Each is
    recorded as its own POST would be (201, 200 for an identical retry, 409, 422, 404), and one bad
    entry spoils none of the others: the answer has one result per entry, in order."""
    return await sync_service.sync(session, settings, caller, body.entries)
