"""Recording entries from the phone: validation, local dates, grades, idempotent storage.

Each `record_*` returns (created, answer): created is False for an identical retry, which answers
the stored entry. Nothing of a rejected request is stored: every check runs before the first write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from models.accounts import Patient
from models.base import utcnow
from models.entries import AnxietyScore, CheckIn, Dose, EntryKind, SymptomReport
from models.entry_schemas import (
    AnxietyCreate,
    AnxietyPublic,
    CheckInAnswer,
    CheckInCreate,
    CheckInPublic,
    DoseCreate,
    DoseFields,
    DosePublic,
    SymptomCreate,
    SymptomFields,
    SymptomPublic,
)
from models.flags import FlagPublic
from services.accounts.access import Caller
from services.clinical.catalog import RED_FLAGS
from services.clinical.gad7 import score_gad7
from services.clinical.grading import ReportProblem, complete_attributes, composite_grade
from services.entries import views as entry_views
from services.entries.idempotency import find_retry, fingerprint, insert_once
from services.entries.regimens import DEFAULT_MEDICATION, regimen_in_force
from services.errors import Conflict, FieldError, NotFound, ValidationFailed
from services.flags import lifecycle as flags
from services.localtime import local_date
from services.settings import Settings

Loc = tuple[str | int, ...]
BODY: Loc = ("body",)


@dataclass
class Context:
    """Who records, for whom, and when the request arrived."""

    session: AsyncSession
    settings: Settings
    caller: Caller
    patient: Patient
    now: datetime

    @property
    def latest_allowed(self) -> datetime:
        return self.now + timedelta(minutes=self.settings.future_tolerance_minutes)

    def local_date(self, instant: datetime) -> date:
        return local_date(instant, self.patient.timezone)


def _not_in_future(ctx: Context, instant: datetime | None, loc: Loc, errors: list[FieldError]) -> None:
    if instant is not None and instant > ctx.latest_allowed:
        minutes = ctx.settings.future_tolerance_minutes
        errors.append(FieldError(loc, f"is more than {minutes} minutes in the future"))


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


# ---- doses ------------------------------------------------------------------------------------------


async def _dose_row(
    ctx: Context,
    entry_id: uuid.UUID,
    data: DoseFields,
    content_hash: str,
    check_in_id: uuid.UUID | None = None,
) -> Dose:
    day = ctx.local_date(data.taken_at)
    medication = data.medication
    if medication is None:
        regimen = await regimen_in_force(ctx.session, ctx.patient.id, day)
        medication = regimen.medication if regimen else DEFAULT_MEDICATION
    return Dose(
        id=entry_id,
        patient_id=ctx.patient.id,
        local_date=day,
        content_hash=content_hash,
        created_by=ctx.caller.user_id,
        taken_at=data.taken_at,
        medication=medication,
        dose_mg=data.dose_mg,
        status=data.status,
        scheduled_for=data.scheduled_for,
        note=data.note,
        check_in_id=check_in_id,
    )


def _check_dose(ctx: Context, data: DoseFields, loc: Loc, errors: list[FieldError]) -> None:
    _not_in_future(ctx, data.taken_at, (*loc, "taken_at"), errors)


async def record_dose(ctx: Context, data: DoseCreate) -> tuple[bool, DosePublic]:
    content_hash = fingerprint(EntryKind.dose, ctx.patient.id, data)
    if (stored := await find_retry(ctx.session, Dose, data.id, content_hash)) is not None:
        return False, await _retried(ctx, entry_views.dose(stored))
    errors: list[FieldError] = []
    _check_dose(ctx, data, BODY, errors)
    _raise_if(errors)
    row = await _dose_row(ctx, data.id, data, content_hash)
    if (stored := await insert_once(ctx.session, [row], Dose, data.id, content_hash)) is not None:
        return False, await _retried(ctx, entry_views.dose(stored))
    answer = entry_views.dose(row)
    answer.flags = await _evaluate(ctx, [row])
    return True, answer


# ---- anxiety scores ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    items: list[int] | None
    total: int | None
    band: str | None
    score: int | None


def _score_anxiety(instrument: str, items: list[int] | None, score: int | None, loc: Loc) -> Scored:
    if instrument == "gad7":
        if score is not None:
            raise ValidationFailed([FieldError((*loc, "score"), "a GAD-7 has items, not a score")])
        if items is None:
            raise ValidationFailed([FieldError((*loc, "items"), "all 7 GAD-7 items are required")])
        try:
            total, band = score_gad7(items)
        except ReportProblem as problem:
            field = tuple(int(part) if part.isdigit() else part for part in problem.field.split("."))
            raise ValidationFailed([FieldError((*loc, *field), problem.msg)]) from problem
        return Scored(list(items), total, band, None)
    if items is not None:
        raise ValidationFailed([FieldError((*loc, "items"), "a rating has a score, not items")])
    if score is None or not 0 <= score <= 10:
        raise ValidationFailed([FieldError((*loc, "score"), "must be a whole number from 0 to 10")])
    return Scored(None, None, None, score)


def _anxiety_row(
    ctx: Context,
    entry_id: uuid.UUID,
    instrument: str,
    scored: Scored,
    recorded_at: datetime,
    day: date,
    content_hash: str,
    check_in_id: uuid.UUID | None = None,
) -> AnxietyScore:
    return AnxietyScore(
        id=entry_id,
        patient_id=ctx.patient.id,
        local_date=day,
        content_hash=content_hash,
        created_by=ctx.caller.user_id,
        recorded_at=recorded_at,
        instrument=instrument,
        items=scored.items,
        total=scored.total,
        band=scored.band,
        score=scored.score,
        check_in_id=check_in_id,
    )


async def record_anxiety(ctx: Context, data: AnxietyCreate) -> tuple[bool, AnxietyPublic]:
    content_hash = fingerprint(EntryKind.anxiety, ctx.patient.id, data)
    if (stored := await find_retry(ctx.session, AnxietyScore, data.id, content_hash)) is not None:
        return False, await _retried(ctx, entry_views.anxiety(stored))
    errors: list[FieldError] = []
    _not_in_future(ctx, data.recorded_at, (*BODY, "recorded_at"), errors)
    _raise_if(errors)
    scored = _score_anxiety(data.instrument, data.items, data.score, BODY)
    row = _anxiety_row(
        ctx,
        data.id,
        data.instrument,
        scored,
        data.recorded_at,
        ctx.local_date(data.recorded_at),
        content_hash,
    )
    if (stored := await insert_once(ctx.session, [row], AnxietyScore, data.id, content_hash)) is not None:
        return False, await _retried(ctx, entry_views.anxiety(stored))
    answer = entry_views.anxiety(row)
    answer.flags = await _evaluate(ctx, [row])
    return True, answer


# ---- side-effect reports ----------------------------------------------------------------------------


def _grade_symptom(data: SymptomFields, loc: Loc) -> tuple[dict[str, int], int | None]:
    given: dict[str, int | None] = {}
    for name in ("frequency", "severity", "interference", "present"):
        value = getattr(data, name)
        if value is not None:
            given[name] = int(value) if name == "present" and isinstance(value, bool) else value
    try:
        attributes = complete_attributes(data.code, given)
        return attributes, composite_grade(data.code, attributes)
    except ReportProblem as problem:
        raise ValidationFailed([FieldError((*loc, problem.field), problem.msg)]) from problem


def _symptom_row(
    ctx: Context,
    entry_id: uuid.UUID,
    data: SymptomFields,
    content_hash: str,
    check_in_id: uuid.UUID | None = None,
) -> SymptomReport:
    attributes, grade = _grade_symptom(data, BODY)
    return SymptomReport(
        id=entry_id,
        patient_id=ctx.patient.id,
        local_date=ctx.local_date(data.reported_at),
        content_hash=content_hash,
        created_by=ctx.caller.user_id,
        reported_at=data.reported_at,
        code=data.code,
        frequency=attributes.get("frequency"),
        severity=attributes.get("severity"),
        interference=attributes.get("interference"),
        present=attributes.get("present"),
        grade=grade,
        note=data.note,
        check_in_id=check_in_id,
    )


async def record_symptom(ctx: Context, data: SymptomCreate) -> tuple[bool, SymptomPublic]:
    content_hash = fingerprint(EntryKind.symptom, ctx.patient.id, data)
    if (stored := await find_retry(ctx.session, SymptomReport, data.id, content_hash)) is not None:
        return False, await _retried(ctx, entry_views.symptom(stored))
    errors: list[FieldError] = []
    _not_in_future(ctx, data.reported_at, (*BODY, "reported_at"), errors)
    _raise_if(errors)
    _grade_symptom(data, BODY)  # refuse before anything is written
    row = _symptom_row(ctx, data.id, data, content_hash)
    if (stored := await insert_once(ctx.session, [row], SymptomReport, data.id, content_hash)) is not None:
        return False, await _retried(ctx, entry_views.symptom(stored))
    answer = entry_views.symptom(row)
    answer.flags = await _evaluate(ctx, [row])
    return True, answer


# ---- check-ins --------------------------------------------------------------------------------------


def _red_flag_answers(answers: dict[str, bool | int]) -> dict[str, Any]:
    """Every question answered: absent means no (or 0). Yes/no takes a bool (or 0/1); the 0-3 scale an int."""
    errors: list[FieldError] = []
    normalized: dict[str, Any] = {}
    for code in answers:
        if code not in RED_FLAGS:
            errors.append(FieldError((*BODY, "red_flags", code), "is not a red-flag question of the catalog"))
    for code, question in RED_FLAGS.items():
        value = answers.get(code)
        loc = (*BODY, "red_flags", code)
        if question.scale == "0-3":
            if value is None:
                normalized[code] = 0
            elif isinstance(value, bool) or not 0 <= value <= 3:
                errors.append(FieldError(loc, "must be a whole number from 0 to 3"))
            else:
                normalized[code] = value
        elif value is None:
            normalized[code] = False
        elif isinstance(value, bool) or value in (0, 1):
            normalized[code] = bool(value)
        else:
            errors.append(FieldError(loc, "must be true or false"))
    _raise_if(errors)
    return normalized


async def _check_part_ids(
    session: AsyncSession, dose_ids: list[uuid.UUID], symptom_ids: list[uuid.UUID]
) -> None:
    """A check-in's parts need ids of their own: not repeated within it, not taken by another entry
    (an entry recorded on its own earlier is not a part of this check-in)."""
    errors: list[FieldError] = []
    for field, ids in (("doses", dose_ids), ("symptoms", symptom_ids)):
        seen: set[uuid.UUID] = set()
        for index, part_id in enumerate(ids):
            if part_id in seen:
                errors.append(FieldError((*BODY, field, index, "id"), "is used twice in this check-in"))
            seen.add(part_id)
    _raise_if(errors)
    for field, model, ids in (("doses", Dose, dose_ids), ("symptoms", SymptomReport, symptom_ids)):
        if not ids:
            continue
        taken = set((await session.execute(select(col(model.id)).where(col(model.id).in_(ids)))).scalars())
        if taken:
            index = next(i for i, part_id in enumerate(ids) if part_id in taken)
            raise Conflict(f"{field}[{index}].id is already used by another entry; give the part a new id.")


def _derived_id(check_in_id: uuid.UUID, part: str) -> uuid.UUID:
    """Nested entries sent without an id get one derived from the check-in's, stable across retries."""
    return uuid.uuid5(check_in_id, part)


async def record_check_in(ctx: Context, data: CheckInCreate) -> tuple[bool, CheckInAnswer]:
    """All parts of a check-in are stored together, or none of them."""
    content_hash = fingerprint(EntryKind.check_in, ctx.patient.id, data)
    if (stored := await find_retry(ctx.session, CheckIn, data.id, content_hash)) is not None:
        return False, await _check_in_retried(ctx, stored)

    errors: list[FieldError] = []
    _not_in_future(ctx, data.submitted_at, (*BODY, "submitted_at"), errors)
    if data.date > ctx.local_date(data.submitted_at):
        errors.append(FieldError((*BODY, "date"), "is after the local date it was submitted on"))
    for index, dose in enumerate(data.doses):
        _check_dose(ctx, dose, (*BODY, "doses", index), errors)
        if ctx.local_date(dose.taken_at) != data.date:
            errors.append(FieldError((*BODY, "doses", index, "taken_at"), "is not on the check-in's date"))
    for index, symptom in enumerate(data.symptoms):
        _not_in_future(ctx, symptom.reported_at, (*BODY, "symptoms", index, "reported_at"), errors)
        if ctx.local_date(symptom.reported_at) != data.date:
            errors.append(
                FieldError((*BODY, "symptoms", index, "reported_at"), "is not on the check-in's date")
            )
        try:
            _grade_symptom(symptom, (*BODY, "symptoms", index))
        except ValidationFailed as failed:
            errors.extend(failed.errors)
    red_flags = {}
    try:
        red_flags = _red_flag_answers(data.red_flags)
    except ValidationFailed as failed:
        errors.extend(failed.errors)
    scored: list[tuple[str, Scored]] = []
    for instrument, items, score, field in (
        ("rating", None, data.anxiety_rating, "anxiety_rating"),
        ("gad7", data.gad7, None, "gad7"),
    ):
        if items is None and score is None:
            continue
        try:
            scored.append((instrument, _score_anxiety(instrument, items, score, (*BODY, field))))
        except ValidationFailed as failed:
            # The check-in names the field itself (anxiety_rating, gad7), not items or score.
            errors.extend(FieldError((*BODY, field, *e.loc[3:]), e.msg) for e in failed.errors)
    _raise_if(errors)

    check_in = CheckIn(
        id=data.id,
        patient_id=ctx.patient.id,
        local_date=data.date,
        content_hash=content_hash,
        created_by=ctx.caller.user_id,
        submitted_at=data.submitted_at,
        red_flags=red_flags,
        note=data.note,
    )
    dose_ids = [dose.id or _derived_id(data.id, f"dose/{i}") for i, dose in enumerate(data.doses)]
    symptom_ids = [s.id or _derived_id(data.id, f"symptom/{i}") for i, s in enumerate(data.symptoms)]
    await _check_part_ids(ctx.session, dose_ids, symptom_ids)
    rows: list[SQLModel] = [check_in]
    for dose_id, dose in zip(dose_ids, data.doses, strict=True):
        rows.append(await _dose_row(ctx, dose_id, dose, content_hash, check_in_id=data.id))
    for symptom_id, symptom in zip(symptom_ids, data.symptoms, strict=True):
        rows.append(_symptom_row(ctx, symptom_id, symptom, content_hash, check_in_id=data.id))
    for instrument, result in scored:
        rows.append(
            _anxiety_row(
                ctx,
                _derived_id(data.id, instrument),
                instrument,
                result,
                data.submitted_at,
                data.date,
                content_hash,
                check_in_id=data.id,
            )
        )
    if (stored := await insert_once(ctx.session, rows, CheckIn, data.id, content_hash)) is not None:
        return False, await _check_in_retried(ctx, stored)
    raised = await _evaluate(ctx, rows)
    # The parts are in hand: no need to read them back.
    view = entry_views.check_in(
        check_in,
        [r for r in rows if isinstance(r, Dose)],
        [r for r in rows if isinstance(r, SymptomReport)],
        [r for r in rows if isinstance(r, AnxietyScore)],
    )
    return True, CheckInAnswer(check_in=view, flags=raised, advice=flags.advice_for(raised))


async def _evaluate(ctx: Context, rows: list[Any]) -> list[FlagPublic]:
    """The write-time flag rules, in this same transaction: the entry and its flags commit together."""
    return await flags.evaluate_new_entries(ctx.session, ctx.settings, ctx.patient, rows)


Answer = TypeVar("Answer", DosePublic, AnxietyPublic, SymptomPublic)


async def _retried(ctx: Context, answer: Answer) -> Answer:
    """A retry answers as the first write did: the stored entry with the flags it raised, so a phone
    whose first answer was lost still shows the advice."""
    answer.flags = await flags.flags_with_evidence(ctx.session, ctx.patient.id, {answer.id})
    return answer


async def _check_in_retried(ctx: Context, stored: CheckIn) -> CheckInAnswer:
    view = await check_in_view(ctx.session, stored)
    ids = {view.id} | {part.id for part in (*view.doses, *view.symptoms, *view.anxiety)}
    raised = await flags.flags_with_evidence(ctx.session, ctx.patient.id, ids)
    return CheckInAnswer(check_in=view, flags=raised, advice=flags.advice_for(raised))


async def check_in_view(session: AsyncSession, check_in: CheckIn) -> CheckInPublic:
    parts: dict[type[SQLModel], list[Any]] = {}
    model: type[Dose] | type[SymptomReport] | type[AnxietyScore]
    for model in (Dose, SymptomReport, AnxietyScore):
        rows = await session.execute(select(model).where(col(model.check_in_id) == check_in.id))
        parts[model] = list(rows.scalars())
    return entry_views.check_in(check_in, parts[Dose], parts[SymptomReport], parts[AnxietyScore])


# ---- entered in error -------------------------------------------------------------------------------

ENTRY_MODELS: dict[EntryKind, type[Dose] | type[AnxietyScore] | type[SymptomReport] | type[CheckIn]] = {
    EntryKind.dose: Dose,
    EntryKind.anxiety: AnxietyScore,
    EntryKind.symptom: SymptomReport,
    EntryKind.check_in: CheckIn,
}


async def mark_entered_in_error(ctx: Context, kind: EntryKind, entry_id: uuid.UUID) -> None:
    """Kept for the audit trail, left out of summaries and rules. A check-in takes its parts with it.
    Marking twice is harmless: the first mark stands."""
    model = ENTRY_MODELS[kind]
    entry = await ctx.session.get(model, entry_id)
    if entry is None or entry.patient_id != ctx.patient.id:
        raise NotFound("No such entry.")
    values = {"entered_in_error_at": ctx.now, "entered_in_error_by": ctx.caller.user_id}
    await ctx.session.execute(
        update(model)
        .where(col(model.id) == entry_id, col(model.entered_in_error_at).is_(None))
        .values(**values)
    )
    retracted = {entry_id}
    if kind == EntryKind.check_in:
        for part in (Dose, SymptomReport, AnxietyScore):
            await ctx.session.execute(
                update(part)
                .where(col(part.check_in_id) == entry_id, col(part.entered_in_error_at).is_(None))
                .values(**values)
            )
            parts = await ctx.session.execute(select(col(part.id)).where(col(part.check_in_id) == entry_id))
            retracted.update(parts.scalars())
    await flags.retract_evidence(ctx.session, ctx.patient.id, retracted)


def context(session: AsyncSession, settings: Settings, caller: Caller, patient: Patient) -> Context:
    return Context(session=session, settings=settings, caller=caller, patient=patient, now=utcnow())
