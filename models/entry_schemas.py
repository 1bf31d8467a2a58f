"""Request and response bodies for entries (API.md "Entries from the phone")."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt
from pydantic import Field as PydanticField

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


class DoseCreate(DoseFields):
    id: uuid.UUID


class CheckInDose(DoseFields):
    id: uuid.UUID | None = PydanticField(default=None, description="Optional; derived from the check-in's id")


class AnxietyCreate(_Strict):
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


class SymptomCreate(SymptomFields):
    id: uuid.UUID


class CheckInSymptom(SymptomFields):
    id: uuid.UUID | None = PydanticField(default=None, description="Optional; derived from the check-in's id")


class CheckInCreate(_Strict):
    id: uuid.UUID
    date: Day
    submitted_at: Instant
    anxiety_rating: StrictInt | None = None
    gad7: list[StrictInt] | None = None
    doses: list[CheckInDose] = PydanticField(default_factory=list, max_length=48)
    symptoms: list[CheckInSymptom] = PydanticField(default_factory=list, max_length=50)
    red_flags: dict[Text, StrictBool | StrictInt] = PydanticField(default_factory=dict)
    note: Text | None = Note


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
    taken_at: datetime
    dose_mg: float
    medication: str
    status: str
    scheduled_for: datetime | None
    note: str | None
    check_in_id: uuid.UUID | None


class AnxietyPublic(EntryPublic):
    recorded_at: datetime
    instrument: str
    items: list[int] | None
    total: int | None
    band: str | None
    score: int | None
    check_in_id: uuid.UUID | None


class SymptomPublic(EntryPublic):
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
    date: Day
    submitted_at: datetime
    red_flags: dict[str, Any]
    note: str | None
    anxiety: list[AnxietyPublic]
    doses: list[DosePublic]
    symptoms: list[SymptomPublic]


class CheckInAnswer(BaseModel):
    check_in: CheckInPublic
    flags: list[FlagPublic] = PydanticField(description="Flags this check-in raised, escalated or added to")
    advice: str | None = PydanticField(description="CLINICAL.md advice for the highest severity raised")


class SyncRequest(BaseModel):
    # Any JSON per entry: each is validated on its own, so one malformed entry gets its own 422.
    entries: list[Any] = PydanticField(max_length=500)


class SyncError(BaseModel):
    title: str
    detail: str
    errors: list[dict[str, Any]] | None = None


class SyncResult(BaseModel):
    id: str | None
    status: int
    error: SyncError | None = None


class SyncAnswer(BaseModel):
    results: list[SyncResult]
