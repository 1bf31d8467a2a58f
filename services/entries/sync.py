"""Offline sync: up to 500 entries in one request, each with its own result; one bad entry does not
spoil the others.

Set-based: every entry is checked and fingerprinted first (a bad one gets its own 422 or 404 and never
reaches the database); then one multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING` per table
stores the new ones, the stored rows are read in one query per table only for the ids not inserted
(an identical retry 200, other content 409), and the flag rules run once per patient over all the
entries stored for them (the snapshot reads a day once), not once per entry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from models.accounts import Patient
from models.base import utcnow
from models.entries import CheckIn
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
from services.entries import kinds, recorder, store
from services.entries.idempotency import fingerprint
from services.errors import DomainError, NotFound, ValidationFailed, status_title
from services.flags import lifecycle as flags
from services.prescribing.regimens import RegimensInForce
from services.settings import Settings

_KINDS: dict[str, tuple[type[BaseModel], recorder.EntryRecipe[Any, Any]]] = {
    "dose": (DoseCreate, kinds.DOSE),
    "anxiety": (AnxietyCreate, kinds.ANXIETY),
    "symptom": (SymptomCreate, kinds.SYMPTOM),
    "check_in": (CheckInCreate, kinds.CHECK_IN),
}


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> SyncError:
    return SyncError(title=status_title(status), detail=detail, errors=errors)


Outcome = tuple[int, SyncError | None]


@dataclass(frozen=True)
class _Checked:
    """An entry whose shape is right, for a patient in scope: its body, not yet its rows."""

    ctx: recorder.Context
    recipe: recorder.EntryRecipe[Any, Any]
    data: Any


@dataclass
class _Entry:
    """An entry that passed its checks: its rows (its own first, a check-in's parts after), and what
    became of it."""

    index: int
    ctx: recorder.Context
    model: type[SQLModel]
    rows: list[SQLModel]
    content_hash: str
    # "insert" (its ids are the batch's first claim on them), or "lookup" (an earlier entry of the
    # batch has its id: answered from the stored row, like a retry).
    mode: str = "insert"
    outcome: Outcome | None = None
    parts_taken: list[uuid.UUID] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return self.rows[0].id  # type: ignore[attr-defined, no-any-return]


async def sync(session: AsyncSession, settings: Settings, caller: Caller, batch: list[Any]) -> SyncAnswer:
    patients: dict[str, Patient | None] = {}
    contexts: dict[uuid.UUID, recorder.Context] = {}
    regimens = RegimensInForce()
    now = utcnow()
    outcomes: list[Outcome | None] = []
    valid: list[tuple[int, _Checked]] = []
    for index, raw in enumerate(batch):
        checked = await _check(session, settings, caller, raw, patients, contexts, regimens, now)
        if isinstance(checked, _Checked):
            valid.append((index, checked))
            outcomes.append(None)
        else:
            outcomes.append(checked)
    # The regimens of every day a dose falls on, one query per patient (a dose without a medication
    # takes the regimen's, and the dose rule its maximum).
    for ctx in contexts.values():
        days = [ctx.local_date(d.taken_at) for _, c in valid if c.ctx is ctx for d in _doses_of(c.data)]
        await regimens.load(session, ctx.patient.id, days)
    entries: list[_Entry] = []
    for index, (ctx, recipe, data) in ((i, (c.ctx, c.recipe, c.data)) for i, c in valid):
        content_hash = fingerprint(recipe.kind, ctx.patient.id, data)
        try:
            rows = await recipe.rows(ctx, data, content_hash)
        except DomainError as exc:
            outcomes[index] = _failed(exc)
            continue
        entries.append(_Entry(index, ctx, recipe.model, rows, content_hash))
    await _store(session, entries)
    await _evaluate(session, settings, entries, regimens)
    for entry in entries:
        outcomes[entry.index] = entry.outcome
    results = []
    for raw, outcome in zip(batch, outcomes, strict=True):
        status, error = outcome if outcome is not None else (500, _error(500, "This entry was not stored."))
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


def _invalid(loc: str, msg: str) -> Outcome:
    return 422, _error(422, f"{loc}: {msg}", [{"loc": [loc], "msg": msg}])


def _failed(exc: DomainError) -> Outcome:
    field_errors: list[dict[str, Any]] | None = None
    if isinstance(exc, ValidationFailed):
        # Entries have no "body" wrapper in a batch: point inside the entry itself.
        field_errors = [{"loc": [p for p in e.loc if p != "body"], "msg": e.msg} for e in exc.errors]
    return exc.status, _error(exc.status, exc.detail, field_errors)


def _doses_of(data: Any) -> list[Any]:
    if isinstance(data, DoseCreate):
        return [data]
    return list(data.doses) if isinstance(data, CheckInCreate) else []


async def _check(
    session: AsyncSession,
    settings: Settings,
    caller: Caller,
    raw: Any,
    patients: dict[str, Patient | None],
    contexts: dict[uuid.UUID, recorder.Context],
    regimens: RegimensInForce,
    now: datetime,
) -> Outcome | _Checked:
    """Checks one entry's shape and finds its patient (once per reference): its recorder context,
    recipe and body, or its outcome when it goes no further."""
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
    ctx = contexts.get(patient.id)
    if ctx is None:
        ctx = recorder.Context(session, settings, caller, patient, now, regimens)
        contexts[patient.id] = ctx
    return _Checked(ctx, recipe, data)


def _key(row: SQLModel) -> tuple[str, uuid.UUID]:
    return store.table_of(type(row)).name, row.id  # type: ignore[attr-defined]


async def _store(session: AsyncSession, entries: list[_Entry]) -> None:
    """One insert per table for the whole batch, check-ins before the parts that point at them; then
    one read per table for the ids not inserted."""
    claimed: set[tuple[str, uuid.UUID]] = set()
    for entry in entries:  # in request order: the first entry with an id is the one inserted
        keys = [_key(row) for row in entry.rows]
        if keys[0] in claimed:
            entry.mode = "lookup"
        elif any(key in claimed for key in keys[1:]):
            taken = {row.id for row in entry.rows[1:] if _key(row) in claimed}  # type: ignore[attr-defined]
            entry.outcome = _conflict(recorder.part_taken(entry.rows[1:], taken))
        else:
            claimed.update(keys)
    inserting = [e for e in entries if e.mode == "insert" and e.outcome is None]
    check_ins = [e for e in inserting if e.model is CheckIn]
    inserted = await store.insert_new(session, CheckIn, [e.rows[0] for e in check_ins])
    for entry in check_ins:
        if entry.id not in inserted:
            entry.mode = "lookup"
    for model in store.PART_MODELS:
        alone = [e for e in inserting if e.model is model]
        parts = [
            (e, row) for e in check_ins if e.mode == "insert" for row in e.rows[1:] if isinstance(row, model)
        ]
        inserted = await store.insert_new(session, model, [e.rows[0] for e in alone] + [r for _, r in parts])
        for entry in alone:
            if entry.id not in inserted:
                entry.mode = "lookup"
        for entry, row in parts:
            if row.id not in inserted:
                entry.parts_taken.append(row.id)
    # A part whose id another entry took meanwhile: the check-in goes, with the parts it stored.
    spoiled = [e for e in check_ins if e.parts_taken]
    await store.delete_check_ins(session, [e.id for e in spoiled])
    for entry in spoiled:
        entry.outcome = _conflict(recorder.part_taken(entry.rows[1:], set(entry.parts_taken)))
    for entry in entries:
        if entry.outcome is None and entry.mode == "insert":
            entry.outcome = (201, None)
    await _answer_lookups(session, [e for e in entries if e.outcome is None])


async def _answer_lookups(session: AsyncSession, entries: list[_Entry]) -> None:
    """Entries not inserted: an identical retry of the stored entry is 200, other content 409."""
    by_model: dict[type[SQLModel], list[_Entry]] = {}
    for entry in entries:
        by_model.setdefault(entry.model, []).append(entry)
    for model, group in by_model.items():
        stored = await store.stored_hashes(session, model, [e.id for e in group])
        for entry in group:
            if stored.get(entry.id) == entry.content_hash:
                entry.outcome = (200, None)
            else:
                entry.outcome = _conflict(store.CONFLICT)


def _conflict(detail: str) -> Outcome:
    return 409, _error(409, detail)


async def _evaluate(
    session: AsyncSession, settings: Settings, entries: list[_Entry], regimens: RegimensInForce
) -> None:
    """The write-time rules once per patient, over every entry stored for them in this batch."""
    stored: dict[uuid.UUID, tuple[Patient, list[SQLModel]]] = {}
    for entry in entries:
        if entry.outcome is not None and entry.outcome[0] == 201:
            patient = entry.ctx.patient
            stored.setdefault(patient.id, (patient, []))[1].extend(entry.rows)
    for patient, rows in stored.values():
        await flags.evaluate_new_entries(session, settings, patient, rows, regimens)
