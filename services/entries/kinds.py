"""The four kinds of entry the phone records, each as a recipe for `services.entries.recorder`: how its
content is checked and derived (local dates, GAD-7 totals, composite grades, red-flag answers), which
rows it becomes, and how its answer looks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
from services.clinical.catalog import RED_FLAGS
from services.clinical.gad7 import score_gad7
from services.clinical.grading import ReportProblem, complete_attributes, composite_grade
from services.entries import check_in_statement, dose_statement, store
from services.entries import views as entry_views
from services.entries.recorder import BODY, Context, EntryRecipe, Loc, flags_raised_by, insert_rows, raise_if
from services.entries.rows import AnxietyRow, CheckInRow, DoseRow, EntryRow, SymptomRow
from services.errors import FieldError, ValidationFailed
from services.flags import lifecycle as flags
from services.flags.dose_day_lock import lock_dose_days
from services.flags.flag_history import read_dose_day
from services.prescribing.regimens import DEFAULT_MEDICATION


def _entry_columns(
    ctx: Context, entry_id: uuid.UUID, day: date, content_hash: str, check_in_id: uuid.UUID | None
) -> dict[str, Any]:
    """The columns every entry row has: whose, which local day, what content, who wrote it. All given,
    none left to a default: the row is what its INSERT takes (services/entries/rows.py)."""
    return {
        "id": entry_id,
        "patient_id": ctx.patient.id,
        "local_date": day,
        "content_hash": content_hash,
        "created_at": ctx.now,
        "created_by": ctx.caller.user_id,
        "entered_in_error_at": None,
        "entered_in_error_by": None,
        "check_in_id": check_in_id,
    }


# ---- doses ------------------------------------------------------------------------------------------


async def _dose_row(
    ctx: Context,
    entry_id: uuid.UUID,
    data: DoseFields,
    content_hash: str,
    check_in_id: uuid.UUID | None,
    *,
    read_day: bool = True,
) -> DoseRow:
    """`read_day=False`: the day not known yet is left to the insert, which reads it in its own
    statement and fills in the medication (dose_statement). A batch knows its days before.

    A taken dose first locks its day (dose_day_lock), before anything reads the day's doses: a dose,
    a check-in and a sync batch recorded at the same time for one day are counted together. A sync
    batch has locked its days already, so this asks nothing more of it."""
    day = ctx.local_date(data.taken_at)
    if data.status == "taken":
        await lock_dose_days(ctx.session, [(ctx.patient.id, day)])
    if read_day and not ctx.regimens.knows(ctx.patient.id, day):
        await read_dose_day(ctx.session, ctx.patient.id, day, ctx.regimens, ctx.taken_before)
    medication = data.medication
    if medication is None and ctx.regimens.knows(ctx.patient.id, day):
        regimen = ctx.regimens.known(ctx.patient.id, day)
        medication = regimen.medication if regimen else DEFAULT_MEDICATION
    return DoseRow(
        _entry_columns(ctx, entry_id, day, content_hash, check_in_id)
        | {
            "taken_at": data.taken_at,
            "medication": medication,  # None only until dose_statement fills it
            "dose_mg": data.dose_mg,
            "status": data.status,
            "scheduled_for": data.scheduled_for,
            "note": data.note,
        }
    )


async def _dose_rows(ctx: Context, data: DoseCreate, content_hash: str) -> list[EntryRow]:
    raise_if(ctx.not_in_future(data.taken_at, (*BODY, "taken_at"), []))
    one_statement = dose_statement.applies(ctx.session)
    return [await _dose_row(ctx, data.id, data, content_hash, None, read_day=not one_statement)]


async def _insert_dose(ctx: Context, rows: list[EntryRow]) -> bool:
    """A dose alone: on PostgreSQL its day's reads, the insert and the audit row in one statement."""
    if dose_statement.applies(ctx.session):
        return await dose_statement.insert_dose(ctx, rows[0])
    return bool(await store.insert_new(ctx.session, Dose, rows))


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
    check_in_id: uuid.UUID | None,
) -> AnxietyRow:
    return AnxietyRow(
        _entry_columns(ctx, entry_id, day, content_hash, check_in_id)
        | {
            "recorded_at": recorded_at,
            "instrument": instrument,
            "items": scored.items,
            "total": scored.total,
            "band": scored.band,
            "score": scored.score,
        }
    )


async def _anxiety_rows(ctx: Context, data: AnxietyCreate, content_hash: str) -> list[EntryRow]:
    raise_if(ctx.not_in_future(data.recorded_at, (*BODY, "recorded_at"), []))
    scored = _score_anxiety(data.instrument, data.items, data.score, BODY)
    day = ctx.local_date(data.recorded_at)
    return [_anxiety_row(ctx, data.id, data.instrument, scored, data.recorded_at, day, content_hash, None)]


# ---- side-effect reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Graded:
    attributes: dict[str, int]
    grade: int | None


def _grade_symptom(data: SymptomFields, loc: Loc) -> Graded:
    given: dict[str, int | None] = {}
    for name in ("frequency", "severity", "interference", "present"):
        value = getattr(data, name)
        if value is not None:
            given[name] = int(value) if name == "present" and isinstance(value, bool) else value
    try:
        attributes = complete_attributes(data.code, given)
        return Graded(attributes, composite_grade(data.code, attributes))
    except ReportProblem as problem:
        raise ValidationFailed([FieldError((*loc, problem.field), problem.msg)]) from problem


def _symptom_row(
    ctx: Context,
    entry_id: uuid.UUID,
    data: SymptomFields,
    graded: Graded,
    content_hash: str,
    check_in_id: uuid.UUID | None,
) -> SymptomRow:
    day = ctx.local_date(data.reported_at)
    return SymptomRow(
        _entry_columns(ctx, entry_id, day, content_hash, check_in_id)
        | {
            "reported_at": data.reported_at,
            "code": data.code,
            "frequency": graded.attributes.get("frequency"),
            "severity": graded.attributes.get("severity"),
            "interference": graded.attributes.get("interference"),
            "present": graded.attributes.get("present"),
            "grade": graded.grade,
            "note": data.note,
        }
    )


async def _symptom_rows(ctx: Context, data: SymptomCreate, content_hash: str) -> list[EntryRow]:
    raise_if(ctx.not_in_future(data.reported_at, (*BODY, "reported_at"), []))
    graded = _grade_symptom(data, BODY)
    return [_symptom_row(ctx, data.id, data, graded, content_hash, None)]


# ---- check-ins --------------------------------------------------------------------------------------


def _red_flag_answers(answers: dict[str, bool | int], errors: list[FieldError]) -> dict[str, Any]:
    """Every question answered: absent means no (or 0). Yes/no takes a bool (or 0/1); the 0-3 scale an int."""
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
    return normalized


def _check_part_ids(dose_ids: list[uuid.UUID], symptom_ids: list[uuid.UUID]) -> None:
    """A check-in's parts need ids of their own, not repeated within it. (An id another entry has is
    found by the insert itself: the recorder answers it with a Conflict.)"""
    errors: list[FieldError] = []
    for field, ids in (("doses", dose_ids), ("symptoms", symptom_ids)):
        seen: set[uuid.UUID] = set()
        for index, part_id in enumerate(ids):
            if part_id in seen:
                errors.append(FieldError((*BODY, field, index, "id"), "is used twice in this check-in"))
            seen.add(part_id)
    raise_if(errors)


def _derived_id(check_in_id: uuid.UUID, part: str) -> uuid.UUID:
    """Nested entries sent without an id get one derived from the check-in's, stable across retries."""
    return uuid.uuid5(check_in_id, part)


async def _check_in_rows(ctx: Context, data: CheckInCreate, content_hash: str) -> list[EntryRow]:
    """A check-in's row first, then its parts: all stored together, or none of them."""
    errors: list[FieldError] = []
    ctx.not_in_future(data.submitted_at, (*BODY, "submitted_at"), errors)
    if data.date > ctx.local_date(data.submitted_at):
        errors.append(FieldError((*BODY, "date"), "is after the local date it was submitted on"))
    for index, dose in enumerate(data.doses):
        ctx.not_in_future(dose.taken_at, (*BODY, "doses", index, "taken_at"), errors)
        if ctx.local_date(dose.taken_at) != data.date:
            errors.append(FieldError((*BODY, "doses", index, "taken_at"), "is not on the check-in's date"))
    graded: list[Graded] = []
    for index, symptom in enumerate(data.symptoms):
        loc = (*BODY, "symptoms", index)
        ctx.not_in_future(symptom.reported_at, (*loc, "reported_at"), errors)
        if ctx.local_date(symptom.reported_at) != data.date:
            errors.append(FieldError((*loc, "reported_at"), "is not on the check-in's date"))
        try:
            graded.append(_grade_symptom(symptom, loc))
        except ValidationFailed as failed:
            errors.extend(failed.errors)
    red_flags = _red_flag_answers(data.red_flags, errors)
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
    raise_if(errors)

    dose_ids = [dose.id or _derived_id(data.id, f"dose/{i}") for i, dose in enumerate(data.doses)]
    symptom_ids = [s.id or _derived_id(data.id, f"symptom/{i}") for i, s in enumerate(data.symptoms)]
    _check_part_ids(dose_ids, symptom_ids)
    columns = _entry_columns(ctx, data.id, data.date, content_hash, None)
    del columns["check_in_id"]  # a check-in is no part of another
    rows: list[EntryRow] = [
        CheckInRow(columns | {"submitted_at": data.submitted_at, "red_flags": red_flags, "note": data.note})
    ]
    # On PostgreSQL, a check-in recorded alone reads its day in its one statement (check_in_statement);
    # a sync batch knows its days already.
    read_day = not check_in_statement.applies(ctx.session)
    for dose_id, dose in zip(dose_ids, data.doses, strict=True):
        rows.append(await _dose_row(ctx, dose_id, dose, content_hash, data.id, read_day=read_day))
    for symptom_id, symptom, grade in zip(symptom_ids, data.symptoms, graded, strict=True):
        rows.append(_symptom_row(ctx, symptom_id, symptom, grade, content_hash, data.id))
    for instrument, result in scored:
        part_id = _derived_id(data.id, instrument)
        rows.append(
            _anxiety_row(
                ctx, part_id, instrument, result, data.submitted_at, data.date, content_hash, data.id
            )
        )
    return rows


def _check_in_answer(rows: list[EntryRow], raised: list[FlagPublic]) -> CheckInAnswer:
    # The parts are in hand: no need to read them back.
    view = entry_views.check_in(
        rows[0],
        [r for r in rows if isinstance(r, DoseRow)],
        [r for r in rows if isinstance(r, SymptomRow)],
        [r for r in rows if isinstance(r, AnxietyRow)],
    )
    return CheckInAnswer(check_in=view, flags=raised, advice=flags.advice_for(raised))


async def check_in_view(session: AsyncSession, stored: CheckIn) -> CheckInPublic:
    parts = await store.check_in_parts(session, stored.id)
    return entry_views.check_in(stored, parts[Dose], parts[SymptomReport], parts[AnxietyScore])


async def _check_in_retried(ctx: Context, stored: CheckIn) -> CheckInAnswer:
    view = await check_in_view(ctx.session, stored)
    ids = {view.id} | {part.id for part in (*view.doses, *view.symptoms, *view.anxiety)}
    raised = await flags_raised_by(ctx, ids)
    return CheckInAnswer(check_in=view, flags=raised, advice=flags.advice_for(raised))


async def _insert_check_in(ctx: Context, rows: list[EntryRow]) -> bool:
    """On PostgreSQL the check-in, its parts, its audit row and the rules' reads in one statement; on
    SQLite a statement per table, and the rules read after."""
    if check_in_statement.applies(ctx.session):
        return await check_in_statement.insert_check_in(ctx, rows)
    return await insert_rows(ctx, rows)


# ---- the recipes ------------------------------------------------------------------------------------


def _single(kind: EntryKind, model: Any, rows: Any, view: Any, insert: Any = None) -> EntryRecipe[Any, Any]:
    """A kind stored as one row, answered as its view with the flags it raised."""

    def answer(written: list[EntryRow], raised: list[FlagPublic]) -> Any:
        public = view(written[0])
        public.flags = raised
        return public

    async def retried(ctx: Context, stored: Any) -> Any:
        public = view(stored)
        public.flags = await flags_raised_by(ctx, {public.id})
        return public

    return EntryRecipe(kind=kind, model=model, rows=rows, answer=answer, retried=retried, insert=insert)


DOSE: EntryRecipe[DoseCreate, DosePublic] = _single(
    EntryKind.dose, Dose, _dose_rows, entry_views.dose, insert=_insert_dose
)
ANXIETY: EntryRecipe[AnxietyCreate, AnxietyPublic] = _single(
    EntryKind.anxiety, AnxietyScore, _anxiety_rows, entry_views.anxiety
)
SYMPTOM: EntryRecipe[SymptomCreate, SymptomPublic] = _single(
    EntryKind.symptom, SymptomReport, _symptom_rows, entry_views.symptom
)
CHECK_IN: EntryRecipe[CheckInCreate, CheckInAnswer] = EntryRecipe(
    kind=EntryKind.check_in,
    model=CheckIn,
    rows=_check_in_rows,
    answer=_check_in_answer,
    retried=_check_in_retried,
    insert=_insert_check_in,
)
RECIPES: dict[EntryKind, EntryRecipe[Any, Any]] = {
    EntryKind.dose: DOSE,
    EntryKind.anxiety: ANXIETY,
    EntryKind.symptom: SYMPTOM,
    EntryKind.check_in: CHECK_IN,
}
