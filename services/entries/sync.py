"""Offline sync: up to 500 entries in one request, each with its own result; one bad entry does not
spoil the others (each is stored in a savepoint of its own)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from models.accounts import Patient
from models.base import utcnow
from models.entry_schemas import (
    AnxietyCreate,
    CheckInCreate,
    DoseCreate,
    SymptomCreate,
    SyncAnswer,
    SyncError,
    SyncResult,
)
from services.accounts import audit
from services.accounts.access import Caller, parse_patient_ref, patient_in_scope
from services.entries import kinds, recorder
from services.errors import DomainError, NotFound, ValidationFailed, status_title
from services.settings import Settings

logger = logging.getLogger("symptrack.sync")

_KINDS: dict[str, tuple[type[BaseModel], recorder.EntryRecipe[Any, Any]]] = {
    "dose": (DoseCreate, kinds.DOSE),
    "anxiety": (AnxietyCreate, kinds.ANXIETY),
    "symptom": (SymptomCreate, kinds.SYMPTOM),
    "check_in": (CheckInCreate, kinds.CHECK_IN),
}


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> SyncError:
    return SyncError(title=status_title(status), detail=detail, errors=errors)


async def sync(session: AsyncSession, settings: Settings, caller: Caller, batch: list[Any]) -> SyncAnswer:
    patients: dict[str, Patient | None] = {}
    results: list[SyncResult] = []
    now = utcnow()
    for raw in batch:
        status, error = await _one(session, settings, caller, raw, patients, now)
        results.append(SyncResult(id=_echo_id(raw), status=status, error=error))
    seen = [p.id for p in patients.values() if p is not None]
    await audit.record(session, caller, "POST /v1/sync", seen)
    denied = [parse_patient_ref(caller, ref) for ref, p in patients.items() if p is None]
    await audit.record(session, caller, "POST /v1/sync", denied, outcome="denied", status_code=404)
    return SyncAnswer(results=results)


def _echo_id(raw: Any) -> str | None:
    """The entry's id as the phone sent it, when it is one (anything else is not echoed back)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _invalid(loc: str, msg: str) -> tuple[int, SyncError]:
    return 422, _error(422, f"{loc}: {msg}", [{"loc": [loc], "msg": msg}])


async def _one(
    session: AsyncSession,
    settings: Settings,
    caller: Caller,
    raw: Any,
    patients: dict[str, Patient | None],
    now: datetime,
) -> tuple[int, SyncError | None]:
    if not isinstance(raw, dict):
        return _invalid("entry", "must be an object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _KINDS:
        return _invalid("type", "must be dose, anxiety, symptom or check_in")
    ref = raw.get("patient_id")
    if not isinstance(ref, str):
        return _invalid("patient_id", "is required")
    if ref not in patients:
        try:
            patients[ref] = (await patient_in_scope(session, caller, ref))[0]
        except NotFound:
            patients[ref] = None
    patient = patients[ref]
    if patient is None:
        return 404, _error(404, "No such patient.")
    model, recipe = _KINDS[kind]
    body = {k: v for k, v in raw.items() if k not in ("type", "patient_id")}
    try:
        data = model.model_validate(body)
    except ValidationError as exc:
        errors = [{"loc": list(err["loc"]), "msg": err["msg"]} for err in exc.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return 422, _error(422, detail, errors)
    ctx = recorder.Context(session=session, settings=settings, caller=caller, patient=patient, now=now)
    savepoint = await session.begin_nested()
    try:
        created, _answer = await recorder.record(ctx, recipe, data)
    except DomainError as exc:
        await savepoint.rollback()
        field_errors: list[dict[str, Any]] | None = None
        if isinstance(exc, ValidationFailed):
            # Entries have no "body" wrapper in a batch: point inside the entry itself.
            field_errors = [{"loc": [p for p in e.loc if p != "body"], "msg": e.msg} for e in exc.errors]
        return exc.status, _error(exc.status, exc.detail, field_errors)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise  # the database is gone: the whole request fails, and the phone retries it
        await savepoint.rollback()
        logger.error("sync entry not stored: %s", type(exc.orig).__name__)
        return 500, _error(500, "This entry could not be stored; send it again.")
    await savepoint.commit()
    return (201 if created else 200), None
