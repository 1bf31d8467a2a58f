"""Request and response bodies for entries (API.md "Entries from the phone")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    JsonValue,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic import Field as PydanticField
from pydantic.config import JsonDict

import models.examples as ex
from models.entries import MAX_NOTE_LENGTH
from models.flags import FlagPublic
from models.regimens import MAX_SINGLE_DOSE_MG, MIN_DOSE_MG
from models.types import Day, Instant, Number, Text, VisibleText

Note = PydanticField(default=None, max_length=MAX_NOTE_LENGTH)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DoseFields(_Strict):
    taken_at: Instant
    dose_mg: Number = PydanticField(
        ge=MIN_DOSE_MG, le=MAX_SINGLE_DOSE_MG, description="mg, from 0.01 to 3600 in one dose"
    )
    medication: VisibleText | None = PydanticField(default=None, min_length=1, max_length=100)
    status: Literal["taken", "skipped"] = "taken"
    scheduled_for: Instant | None = None
    note: Text | None = Note


_DOSE_IN: JsonDict = {"taken_at": ex.TAKEN_AT, "dose_mg": 300, "scheduled_for": ex.SCHEDULED_FOR}


class DoseCreate(DoseFields):
    """A dose the patient took (or skipped), with the id the phone generated: retries are safe."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"id": ex.DOSE_ID, **_DOSE_IN}]})

    id: uuid.UUID


class CheckInDose(DoseFields):
    """A dose reported as part of a check-in."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DOSE_IN]})

    id: uuid.UUID | None = PydanticField(default=None, description="Optional; derived from the check-in's id")


class AnxietyCreate(_Strict):
    """A GAD-7 (`items`, 7 answers 0-3) or a 0-10 anxiety rating (`score`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": ex.ANXIETY_ID,
                    "recorded_at": ex.RECORDED_AT,
                    "instrument": "gad7",
                    "items": [1, 2, 1, 1, 0, 2, 1],
                },
                {"id": ex.ANXIETY_ID, "recorded_at": ex.RECORDED_AT, "instrument": "rating", "score": 4},
            ]
        },
    )

    id: uuid.UUID
    recorded_at: Instant
    instrument: Literal["gad7", "rating"]
    items: list[StrictInt] | None = PydanticField(default=None, description="GAD-7: 7 answers, each 0-3")
    score: StrictInt | None = PydanticField(default=None, description="rating: 0-10")


class SymptomFields(_Strict):
    reported_at: Instant
    code: Text = PydanticField(max_length=40)
    frequency: StrictInt | None = None
    severity: StrictInt | None = None
    interference: StrictInt | None = None
    present: StrictInt | StrictBool | None = None
    note: Text | None = Note


_SYMPTOM_IN: JsonDict = {"reported_at": ex.RECORDED_AT, "code": "dizziness", "severity": 2, "interference": 1}


class SymptomCreate(SymptomFields):
    """A side effect of the catalog, with the attributes its term asks for (GET /v1/catalog)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"id": ex.SYMPTOM_ID, **_SYMPTOM_IN}]})

    id: uuid.UUID


class CheckInSymptom(SymptomFields):
    """A side effect reported as part of a check-in."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SYMPTOM_IN]})

    id: uuid.UUID | None = PydanticField(default=None, description="Optional; derived from the check-in's id")


class CheckInCreate(_Strict):
    """The daily check-in: the red-flag answers (codes from GET /v1/catalog), and optionally a
    rating or GAD-7, doses and side effects, all stored together or not at all."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": ex.CHECK_IN_ID,
                    "date": ex.DAY,
                    "submitted_at": ex.RECORDED_AT,
                    "anxiety_rating": 4,
                    "doses": [_DOSE_IN],
                    "symptoms": [_SYMPTOM_IN],
                    "red_flags": {"face_swelling": True, "self_harm_thoughts": 0, "fever": False},
                }
            ]
        },
    )

    id: uuid.UUID
    date: Day
    submitted_at: Instant
    anxiety_rating: StrictInt | None = None
    gad7: list[StrictInt] | None = None
    doses: list[CheckInDose] = PydanticField(default_factory=list, max_length=48)
    symptoms: list[CheckInSymptom] = PydanticField(default_factory=list, max_length=50)
    red_flags: dict[Text, StrictBool | StrictInt] = PydanticField(default_factory=dict)
    note: Text | None = Note


_ENTRY_OUT: JsonDict = {
    "patient_id": ex.PATIENT_ID,
    "local_date": ex.DAY,
    "created_at": ex.CREATED_AT,
    "entered_in_error": False,
    "entered_in_error_at": None,
    "flags": [],
}
_DOSE_OUT: JsonDict = {
    **_ENTRY_OUT,
    "id": ex.DOSE_ID,
    "taken_at": "2026-05-04T12:05:00Z",
    "dose_mg": 300.0,
    "medication": "gabapentin",
    "status": "taken",
    "scheduled_for": "2026-05-04T12:00:00Z",
    "note": None,
    "check_in_id": None,
}
_ANXIETY_OUT: JsonDict = {
    **_ENTRY_OUT,
    "id": ex.ANXIETY_ID,
    "recorded_at": "2026-05-05T00:30:00Z",
    "instrument": "gad7",
    "items": [1, 2, 1, 1, 0, 2, 1],
    "total": 8,
    "band": "mild",
    "score": None,
    "check_in_id": None,
}
_SYMPTOM_OUT: JsonDict = {
    **_ENTRY_OUT,
    "id": ex.SYMPTOM_ID,
    "reported_at": "2026-05-05T00:30:00Z",
    "code": "dizziness",
    "frequency": None,
    "severity": 2,
    "interference": 1,
    "present": None,
    "grade": 1,
    "note": None,
    "check_in_id": None,
}
_CHECK_IN_OUT: JsonDict = {
    **_ENTRY_OUT,
    "id": ex.CHECK_IN_ID,
    "date": ex.DAY,
    "submitted_at": "2026-05-05T00:30:00Z",
    "red_flags": {"face_swelling": True, "breathing_trouble": False, "self_harm_thoughts": 0},
    "note": None,
    "anxiety": [],
    "doses": [],
    "symptoms": [],
    "flags": [ex.FLAG],
}


class EntryPublic(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    local_date: date
    created_at: datetime
    entered_in_error: bool
    entered_in_error_at: datetime | None = None
    flags: list[FlagPublic] = PydanticField(
        default_factory=list, description="Flags this entry raised or escalated"
    )


class DosePublic(EntryPublic):
    """A recorded dose."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DOSE_OUT]})

    taken_at: datetime
    dose_mg: float
    medication: str
    status: str
    scheduled_for: datetime | None
    note: str | None
    check_in_id: uuid.UUID | None


class AnxietyPublic(EntryPublic):
    """A recorded GAD-7 (with its total and band) or 0-10 rating."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ANXIETY_OUT]})

    recorded_at: datetime
    instrument: str
    items: list[int] | None
    total: int | None
    band: str | None
    score: int | None
    check_in_id: uuid.UUID | None


class SymptomPublic(EntryPublic):
    """A recorded side effect, with its composite grade (null for presence-only terms)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SYMPTOM_OUT]})

    reported_at: datetime
    code: str
    frequency: int | None
    severity: int | None
    interference: int | None
    present: int | None
    grade: int | None
    note: str | None
    check_in_id: uuid.UUID | None


class CheckInPublic(EntryPublic):
    """A recorded check-in and the entries it holds."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CHECK_IN_OUT]})

    date: Day
    submitted_at: datetime
    red_flags: dict[str, Any]
    note: str | None
    anxiety: list[AnxietyPublic]
    doses: list[DosePublic]
    symptoms: list[SymptomPublic]


class CheckInAnswer(BaseModel):
    """The stored check-in, the flags it raised, and the advice the patient should read now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"check_in": _CHECK_IN_OUT, "flags": [ex.FLAG], "advice": ex.URGENT_ADVICE}]
        }
    )

    check_in: CheckInPublic
    flags: list[FlagPublic] = PydanticField(description="Flags this check-in raised, escalated or added to")
    advice: str | None = PydanticField(description="CLINICAL.md advice for the highest severity raised")


class _InSync(_Strict):
    """What a sync entry adds to its kind's POST body: its kind, and whose entry it is. Listed first;
    each member narrows `type` to its own kind (the union's discriminator)."""

    type: str
    patient_id: Text = PydanticField(
        max_length=40, description="The patient's id, or `me` for the caller's own record"
    )


def _in_sync(kind: str, body: JsonDict) -> JsonDict:
    return {"type": kind, "patient_id": "me", **body}


class DoseEntry(DoseCreate, _InSync):
    """A dose in a sync batch: `type: "dose"`, `patient_id`, and the body of POST .../doses."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_in_sync("dose", {"id": ex.DOSE_ID, **_DOSE_IN})]}
    )

    type: Literal["dose"]


class AnxietyEntry(AnxietyCreate, _InSync):
    """An anxiety score in a sync batch: `type: "anxiety"`, `patient_id`, and the body of POST
    .../anxiety."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _in_sync(
                    "anxiety",
                    {"id": ex.ANXIETY_ID, "recorded_at": ex.RECORDED_AT, "instrument": "rating", "score": 4},
                )
            ]
        }
    )

    type: Literal["anxiety"]


class SymptomEntry(SymptomCreate, _InSync):
    """A side effect in a sync batch: `type: "symptom"`, `patient_id`, and the body of POST
    .../symptoms."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_in_sync("symptom", {"id": ex.SYMPTOM_ID, **_SYMPTOM_IN})]}
    )

    type: Literal["symptom"]


class CheckInEntry(CheckInCreate, _InSync):
    """A check-in in a sync batch: `type: "check_in"`, `patient_id`, and the body of POST
    .../check-ins."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _in_sync(
                    "check_in",
                    {
                        "id": ex.CHECK_IN_ID,
                        "date": ex.DAY,
                        "submitted_at": ex.RECORDED_AT,
                        "red_flags": {"face_swelling": True, "hard_to_wake": False},
                    },
                )
            ]
        }
    )

    type: Literal["check_in"]


# The four kinds, told apart by `type`: OpenAPI shows a `discriminator` with its mapping, and a client
# generated from it types every entry.
SyncEntry = Annotated[
    DoseEntry | AnxietyEntry | SymptomEntry | CheckInEntry, PydanticField(discriminator="type")
]


@dataclass(frozen=True)
class RejectedEntry:
    """A sync entry that is not one of the four kinds' bodies: what was sent, and why it is not. Never
    in the OpenAPI document; the sync service answers it with its own 422 (or 404)."""

    raw: Any
    errors: list[dict[str, Any]]


def _entry_or_rejection(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as exc:
        errors = [{"loc": err["loc"], "msg": err["msg"]} for err in exc.errors(include_url=False)]
        return RejectedEntry(raw=value, errors=errors)


if TYPE_CHECKING:
    LenientEntry = SyncEntry | RejectedEntry
else:
    # The wrap validator keeps the union's JSON schema: the document shows the union, while an entry
    # that fails it becomes a RejectedEntry instead of failing the whole request.
    LenientEntry = Annotated[SyncEntry, WrapValidator(_entry_or_rejection)]


class SyncRequest(BaseModel):
    """Entries recorded offline, each the POST body of its kind plus `type` (dose, anxiety, symptom or
    check_in) and `patient_id` (or `me`). Each entry is judged alone: one that is not valid gets its
    own 422 result, and the others are stored; only a body that is not `{entries: [...]}`, or holds
    more than 500 entries, is refused whole."""

    # Documented as the union discriminated by `type` (so generated clients type every entry), but
    # validated entry by entry: LenientEntry's wrap validator turns an entry that is no valid member
    # into a RejectedEntry instead of failing the request, and services/entries/sync.py answers it
    # with its own 422 (or 404 when its patient is not the caller's to see).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "entries": [
                        _in_sync("dose", {"id": ex.DOSE_ID, **_DOSE_IN}),
                        _in_sync("symptom", {"id": ex.SYMPTOM_ID, **_SYMPTOM_IN}),
                        _in_sync(
                            "check_in",
                            {
                                "id": ex.CHECK_IN_ID,
                                "date": ex.DAY,
                                "submitted_at": ex.RECORDED_AT,
                                "red_flags": {"face_swelling": True},
                            },
                        ),
                    ]
                }
            ]
        }
    )

    entries: list[LenientEntry] = PydanticField(max_length=500)


class SyncError(BaseModel):
    """Why one entry of a sync was refused: the problem its own POST would have answered."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Conflict",
                    "detail": "An entry with this id already exists with different content.",
                    "errors": None,
                }
            ]
        }
    )

    title: str
    detail: str
    errors: list[dict[str, Any]] | None = None


_SYNC_RESULTS: list[JsonValue] = [
    {"id": ex.DOSE_ID, "status": 201, "error": None, "flags": [], "advice": None},
    {
        "id": ex.SYMPTOM_ID,
        "status": 409,
        "error": {
            "title": "Conflict",
            "detail": "An entry with this id already exists with different content.",
        },
        "flags": [],
        "advice": None,
    },
    {"id": ex.CHECK_IN_ID, "status": 201, "error": None, "flags": [ex.FLAG], "advice": ex.URGENT_ADVICE},
]


class SyncResult(BaseModel):
    """One entry's outcome, in the order sent: 201 stored, 200 an identical retry, else a problem; with
    the flags the entry raised, escalated or added evidence to, as its own POST would answer them."""

    model_config = ConfigDict(json_schema_extra={"examples": _SYNC_RESULTS[2:]})

    id: str | None
    status: int
    error: SyncError | None = None
    flags: list[FlagPublic] = PydanticField(
        description="Flags this entry (or a part of a check-in) is evidence for: those it raised, "
        "escalated or added to; for a retry (200), those its first write did. Empty otherwise."
    )
    advice: str | None = PydanticField(
        description="CLINICAL.md advice for the highest severity among `flags`, or null"
    )


class SyncAnswer(BaseModel):
    """A result per entry sent, in order, and the advice of the highest severity of the whole batch:
    an app shows it the moment the batch is answered."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"results": _SYNC_RESULTS, "advice": ex.URGENT_ADVICE}]}
    )

    results: list[SyncResult]
    advice: str | None = PydanticField(
        description="CLINICAL.md advice for the highest severity among all the results' flags, or null"
    )
