"""Offline sync: up to 500 entries in one request, each with its own result; one bad entry does not
spoil the others.

Set-based: every entry is checked and fingerprinted first (a bad one gets its own 422 or 404 and never
reaches the database); then one multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING` per table
stores the new ones, the stored rows are read in one query per table only for the ids not inserted
(an identical retry 200, other content 409), and the flag rules run once per patient over all the
entries stored for them (the snapshot reads a day once), not once per entry.

Each result answers as its entry's own POST would: the flags it raised, escalated or added evidence to
(a check-in's through its own id or its parts'), and the patient-facing advice of the highest of them;
the answer's own `advice` is the highest of the batch, so an app that synced a red-flag answer shows
"call your emergency number" at once. The rules' flags are attributed to entries by their evidence,
in memory; a retried entry's flags (200, as a single retry answers) come from one read per patient.

The entries arrive typed (models.entry_schemas.SyncRequest): each one is a member of the union
discriminated by `type`, or a RejectedEntry that holds what was sent and why it failed, answered here
with its own 422 after the same checks, in the same order, as before (its kind, its patient, its body).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from models.accounts import Patient
from models.base import utcnow
from models.entries import CheckIn
from models.entry_schemas import (
    AnxietyCreate,
    CheckInCreate,
    DoseCreate,
    RejectedEntry,
    SymptomCreate,
    SyncAnswer,
    SyncEntry,
    SyncError,
    SyncResult,
)
from models.flags import FlagPublic
from services.accounts import audit
from services.accounts.access import Caller, parse_patient_ref, patient_in_scope
from services.entries import kinds, recorder, store
from services.entries.idempotency import fingerprint
from services.entries.rows import EntryRow
from services.errors import DomainError, NotFound, ValidationFailed, status_title
from services.flags import lifecycle as flags
from services.flags.dose_day_lock import lock_dose_days
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
    rows: list[EntryRow]
    content_hash: str
    # "insert" (its ids are the batch's first claim on them), or "lookup" (an earlier entry of the
    # batch has its id: answered from the stored row, like a retry).
    mode: str = "insert"
    outcome: Outcome | None = None
    parts_taken: list[uuid.UUID] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return self.rows[0].id  # type: ignore[no-any-return]  # a row reads its columns untyped


async def sync(
    session: AsyncSession, settings: Settings, caller: Caller, batch: Sequence[SyncEntry | RejectedEntry]
) -> SyncAnswer:
    patients: dict[str, Patient | None] = {}
    contexts: dict[uuid.UUID, recorder.Context] = {}
    regimens = RegimensInForce()
    now = utcnow()
    outcomes: list[Outcome | None] = []
    valid: list[tuple[int, _Checked]] = []
    for index, sent in enumerate(batch):
        checked = await _check(session, settings, caller, sent, patients, contexts, regimens, now)
        if isinstance(checked, _Checked):
            valid.append((index, checked))
            outcomes.append(None)
        else:
            outcomes.append(checked)
    # Every (patient, day) a taken dose falls on, locked at once before anything reads those days
    # (dose_day_lock): a dose or a check-in racing this batch is counted with it.
    taken_days = [
        (c.ctx.patient.id, c.ctx.local_date(d.taken_at))
        for _, c in valid
        for d in _doses_of(c.data)
        if d.status == "taken"
    ]
    await lock_dose_days(session, taken_days)
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
    raised = await _evaluate(session, settings, entries, regimens)
    flags_of = await _flags_of(session, entries, raised)
    for entry in entries:
        outcomes[entry.index] = entry.outcome
    results = []
    for index, (sent, outcome) in enumerate(zip(batch, outcomes, strict=True)):
        status, error = outcome if outcome is not None else (500, _error(500, "This entry was not stored."))
        own = flags_of.get(index, [])
        results.append(
            SyncResult(id=_echo_id(sent), status=status, error=error, flags=own, advice=flags.advice_for(own))
        )
    seen = [p.id for p in patients.values() if p is not None]
    await audit.record(session, caller, "POST /v1/sync", seen)
    denied = [parse_patient_ref(caller, ref) for ref, p in patients.items() if p is None]
    await audit.record(session, caller, "POST /v1/sync", denied, outcome="denied", status_code=404)
    everything = [f for own in flags_of.values() for f in own] + [f for r in raised.values() for f in r]
    return SyncAnswer(results=results, advice=flags.advice_for(everything))


def _echo_id(sent: SyncEntry | RejectedEntry) -> str | None:
    """The entry's id as the phone sent it, when it is one (anything else is not echoed back)."""
    if not isinstance(sent, RejectedEntry):
        return str(sent.id)
    value = sent.raw.get("id") if isinstance(sent.raw, dict) else None
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
    sent: SyncEntry | RejectedEntry,
    patients: dict[str, Patient | None],
    contexts: dict[uuid.UUID, recorder.Context],
    regimens: RegimensInForce,
    now: datetime,
) -> Outcome | _Checked:
    """Checks one entry's shape and finds its patient (once per reference): its recorder context,
    recipe and body, or its outcome when it goes no further. A rejected entry is answered as if it
    had been checked field by field: its kind first, then its patient (404), then its body (422)."""
    if isinstance(sent, RejectedEntry):
        raw = sent.raw
        if not isinstance(raw, dict):
            return _invalid("entry", "must be an object")
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in _KINDS:
            return _invalid("type", "must be dose, anxiety, symptom or check_in")
        ref = raw.get("patient_id")
        if not isinstance(ref, str):
            return _invalid("patient_id", "is required")
    else:
        kind, ref = sent.type, sent.patient_id
    if ref not in patients:
        try:
            patients[ref] = (await patient_in_scope(session, caller, ref))[0]
        except NotFound:
            patients[ref] = None
    patient = patients[ref]
    if patient is None:
        return 404, _error(404, "No such patient.")
    model, recipe = _KINDS[kind]
    if isinstance(sent, RejectedEntry):
        # The union names the member first (("dose", "dose_mg")): point inside the entry itself.
        errors = [{"loc": _inside(kind, err["loc"]), "msg": err["msg"]} for err in sent.errors]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return 422, _error(422, detail, errors)
    data = _body(model, sent)
    ctx = contexts.get(patient.id)
    if ctx is None:
        ctx = recorder.Context(session, settings, caller, patient, now, regimens)
        contexts[patient.id] = ctx
    return _Checked(ctx, recipe, data)


def _inside(kind: str, loc: Sequence[str | int]) -> list[str | int]:
    return list(loc[1:]) if loc and loc[0] == kind else list(loc)


def _body(model: type[BaseModel], sent: SyncEntry) -> BaseModel:
    """The kind's own POST body out of a sync entry (validated already: nothing is checked twice), so
    the entry is fingerprinted, stored and answered exactly as its single POST would be."""
    fields = {name: getattr(sent, name) for name in model.model_fields}
    return model.model_construct(_fields_set=sent.model_fields_set & fields.keys(), **fields)


def _key(row: EntryRow) -> tuple[str, uuid.UUID]:
    return row.__tablename__, row.id


async def _store(session: AsyncSession, entries: list[_Entry]) -> None:
    """One insert per table for the whole batch, check-ins before the parts that point at them; then
    one read per table for the ids not inserted."""
    claimed: set[tuple[str, uuid.UUID]] = set()
    for entry in entries:  # in request order: the first entry with an id is the one inserted
        keys = [_key(row) for row in entry.rows]
        if keys[0] in claimed:
            entry.mode = "lookup"
        elif any(key in claimed for key in keys[1:]):
            taken = {row.id for row in entry.rows[1:] if _key(row) in claimed}
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
            (e, row) for e in check_ins if e.mode == "insert" for row in e.rows[1:] if row.model is model
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
) -> dict[uuid.UUID, list[FlagPublic]]:
    """The write-time rules once per patient, over every entry stored for them in this batch; the
    flags they raised, escalated or added to, per patient."""
    stored: dict[uuid.UUID, tuple[Patient, list[EntryRow]]] = {}
    for entry in entries:
        if entry.outcome is not None and entry.outcome[0] == 201:
            patient = entry.ctx.patient
            stored.setdefault(patient.id, (patient, []))[1].extend(entry.rows)
    raised: dict[uuid.UUID, list[FlagPublic]] = {}
    for patient, rows in stored.values():
        raised[patient.id] = await flags.evaluate_new_entries(session, settings, patient, rows, regimens)
    return raised


async def _flags_of(
    session: AsyncSession, entries: list[_Entry], raised: dict[uuid.UUID, list[FlagPublic]]
) -> dict[int, list[FlagPublic]]:
    """Each stored entry's flags, by its index in the batch, as its own POST would answer them: a new
    entry (201) the flags the batch's rules raised, escalated or added to with it as evidence; a retry
    (200) every flag it is evidence for (recorder.flags_raised_by), read once per patient for all of
    the batch's retries. A check-in counts its parts' ids with its own."""
    retried: dict[uuid.UUID, set[uuid.UUID]] = {}
    for entry in entries:
        if entry.outcome is not None and entry.outcome[0] == 200:
            # Same id, same content: the rows built from the request are the stored rows, parts too.
            retried.setdefault(entry.ctx.patient.id, set()).update(_ids(entry))
    earlier = {
        patient_id: await flags.flags_with_evidence(session, patient_id, ids)
        for patient_id, ids in retried.items()
    }
    by_status = {201: raised, 200: earlier}
    indexes = {status: _by_evidence(found) for status, found in by_status.items()}
    answered: dict[int, list[FlagPublic]] = {}
    for entry in entries:
        status = entry.outcome[0] if entry.outcome is not None else None
        if status not in by_status:
            continue
        patient_id = entry.ctx.patient.id
        index = indexes[status]
        own = {flag_id for entry_id in _ids(entry) for flag_id in index.get((patient_id, entry_id), ())}
        if own:  # in the order the rules (or the flags' creation) gave them
            answered[entry.index] = [f for f in by_status[status][patient_id] if f.id in own]
    return answered


def _ids(entry: _Entry) -> Iterable[uuid.UUID]:
    return (row.id for row in entry.rows)


def _by_evidence(
    flags_by_patient: dict[uuid.UUID, list[FlagPublic]],
) -> dict[tuple[uuid.UUID, uuid.UUID], set[uuid.UUID]]:
    """The ids of the flags each entry id is evidence for (per patient): one pass over the flags, not
    one per entry."""
    index: dict[tuple[uuid.UUID, uuid.UUID], set[uuid.UUID]] = {}
    for patient_id, found in flags_by_patient.items():
        for flag in found:
            for item in flag.evidence:
                index.setdefault((patient_id, item.id), set()).add(flag.id)
    return index
