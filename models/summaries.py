"""What providers read: a patient's summary over a window, and the panel of their patients."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

import models.examples as ex
from models.flags import FlagStatus, Severity
from models.regimens import REGIMEN_EXAMPLE_BODY, RegimenPublic

_ADHERENCE: JsonDict = {"scheduled": 56, "taken": 52, "percent": 92.9, "on_time_percent": 85.7}
_DAILY_MG: JsonDict = {"date": ex.DAY, "mg": 600.0}
_GAD7_POINT: JsonDict = {"date": ex.DAY, "recorded_at": "2026-05-05T00:30:00Z", "total": 8, "band": "mild"}
_GAD7_BASELINE: JsonDict = {"value": 14, "date": "2026-04-01"}
_GAD7_CHANGE: JsonDict = {
    "points": -6,
    "meaning": "reliable improvement: at least the reliable change index (6 points) and the minimal "
    "clinically important difference (4)",
}
_GAD7_SUMMARY: JsonDict = {
    "first": 13,
    "last": 8,
    "change": -5,
    "last_band": "mild",
    "series": [_GAD7_POINT],
    "baseline": _GAD7_BASELINE,
    "change_from_baseline": _GAD7_CHANGE,
}
_RATING_POINT: JsonDict = {"date": ex.DAY, "recorded_at": "2026-05-05T00:30:00Z", "score": 4}
_RATING_SUMMARY: JsonDict = {"mean": 4.5, "series": [_RATING_POINT]}
_SYMPTOM: JsonDict = {"code": "dizziness", "reports": 6, "days": 5, "max_grade": 2, "last_grade": 1}
_FLAG_COUNTS: JsonDict = {"urgent": 1, "high": 0, "routine": 2}
_CHECK_INS: JsonDict = {"days": 27, "percent": 90.0, "regimen_days": 30}
_REGIMEN: JsonDict = {
    "id": ex.REGIMEN_ID,
    "patient_id": ex.PATIENT_ID,
    **REGIMEN_EXAMPLE_BODY,
    "created_at": ex.EARLIER,
}


class Adherence(BaseModel):
    """Doses taken against the schedule in force, over the window."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ADHERENCE]})

    scheduled: int = Field(
        description="Scheduled doses whose time has come, by the regimen in force each day"
    )
    taken: int = Field(description="Scheduled doses with a taken dose on their local day")
    percent: float | None = Field(description="taken / scheduled, in %; null when nothing was scheduled")
    on_time_percent: float | None = Field(
        description="Scheduled doses with a taken dose within 60 minutes of their time / scheduled, in %"
    )


class DailyMg(BaseModel):
    """Milligrams taken on one local day."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DAILY_MG]})

    date: date
    mg: float


class Gad7Point(BaseModel):
    """One GAD-7: its total 0-21 and band (minimal, mild, moderate, severe)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_GAD7_POINT]})

    date: date
    recorded_at: datetime
    total: int
    band: str


class Gad7Baseline(BaseModel):
    """The treatment baseline (CLINICAL.md 4): the first GAD-7 on or after the start of the patient's
    first regimen, whatever the window."""

    model_config = ConfigDict(json_schema_extra={"examples": [_GAD7_BASELINE]})

    value: int
    date: date


class Gad7Change(BaseModel):
    """A change between two GAD-7 totals and what it means by the minimal clinically important
    difference (4 points) and the reliable change index (6 points)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_GAD7_CHANGE]})

    points: int
    meaning: str


class Gad7Summary(BaseModel):
    """The GAD-7s of the window: first, last, their change, and every one; and the change from the
    treatment baseline to the window's last."""

    model_config = ConfigDict(json_schema_extra={"examples": [_GAD7_SUMMARY]})

    first: int | None
    last: int | None
    change: int | None
    last_band: str | None
    series: list[Gad7Point]
    baseline: Gad7Baseline | None = Field(
        default=None,
        description="The treatment baseline; null before any GAD-7 on or after the first regimen",
    )
    change_from_baseline: Gad7Change | None = Field(
        default=None,
        description="The window's last GAD-7 less the baseline, with its meaning; null without a baseline or "
        "without a GAD-7 in the window",
    )


class RatingPoint(BaseModel):
    """One 0-10 anxiety rating."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RATING_POINT]})

    date: date
    recorded_at: datetime
    score: int


class RatingSummary(BaseModel):
    """The 0-10 ratings of the window and their mean."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RATING_SUMMARY]})

    mean: float | None
    series: list[RatingPoint]


class SymptomSummary(BaseModel):
    """One side effect over the window: reports, days reported, worst and last composite grade."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SYMPTOM]})

    code: str
    reports: int
    days: int
    max_grade: int | None
    last_grade: int | None


class FlagCounts(BaseModel):
    """Flags not yet resolved, by severity."""

    model_config = ConfigDict(json_schema_extra={"examples": [_FLAG_COUNTS]})

    urgent: int = 0
    high: int = 0
    routine: int = 0


class FlagInWindow(BaseModel):
    """A flag whose first evidence happened in the window, on its own local date (a GAD-7 synced days
    late is placed on the day it was recorded, not the day it arrived)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.FLAG_ID,
                    "rule": "anaphylaxis",
                    "severity": "urgent",
                    "status": "open",
                    "observed_at": "2026-05-05T01:30:00Z",
                    "date": ex.DAY,
                }
            ]
        }
    )

    id: uuid.UUID
    rule: str
    severity: Severity
    status: FlagStatus
    observed_at: datetime
    date: date


class CheckInSummary(BaseModel):
    """Days of the window with a check-in, and their share in % of the days a regimen was in force
    (up to today; of the window's days when none was)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CHECK_INS]})

    days: int
    percent: float = Field(
        description="Check-in days on a regimen day / regimen days, in %; over the window's days when no "
        "regimen was in force in it"
    )
    regimen_days: int = Field(
        default=0, description="The window's days up to today with a regimen in force: what percent is over"
    )


class PatientSummary(BaseModel):
    """A patient over a window of local days (`from`, `to`): regimen, adherence, mg per day, GAD-7 and
    ratings, side effects, open flags and check-ins."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": ex.PATIENT_ID,
                    "from": "2026-04-06",
                    "to": ex.DAY,
                    "regimen": _REGIMEN,
                    "regimens": [_REGIMEN],
                    "adherence": _ADHERENCE,
                    "daily_mg": [_DAILY_MG],
                    "gad7": _GAD7_SUMMARY,
                    "rating": _RATING_SUMMARY,
                    "symptoms": [_SYMPTOM],
                    "open_flags": _FLAG_COUNTS,
                    "flags": [],
                    "check_ins": _CHECK_INS,
                }
            ]
        }
    )

    patient_id: uuid.UUID
    # Read back as written ("from", "to") too, so the document's example is checked like the others.
    from_date: date = Field(serialization_alias="from", validation_alias=AliasChoices("from_date", "from"))
    to_date: date = Field(serialization_alias="to", validation_alias=AliasChoices("to_date", "to"))
    regimen: RegimenPublic | None = Field(description="The regimen in force on the last day of the window")
    regimens: list[RegimenPublic] = Field(description="Every regimen in force at some point in the window")
    adherence: Adherence
    daily_mg: list[DailyMg]
    gad7: Gad7Summary
    rating: RatingSummary
    symptoms: list[SymptomSummary]
    open_flags: FlagCounts
    flags: list[FlagInWindow] = Field(
        default_factory=list, description="Flags whose first evidence happened in the window, oldest first"
    )
    check_ins: CheckInSummary


class PanelRow(BaseModel):
    """One patient of the caller's panel: active flags (open or acknowledged) and those not yet
    acknowledged, last check-in, 7-day adherence, last GAD-7 band and worst grade of the last 7 days."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": ex.PATIENT_ID,
                    "name": "Alex Rivera",
                    "open_flags": _FLAG_COUNTS,
                    "unacknowledged": {"urgent": 1, "high": 0, "routine": 1},
                    "last_check_in": ex.DAY,
                    "adherence_7d": 92.9,
                    "gad7_last_band": "mild",
                    "worst_grade_7d": 2,
                }
            ]
        }
    )

    patient_id: uuid.UUID
    name: str
    open_flags: FlagCounts = Field(description="Active flags (open or acknowledged) by severity")
    unacknowledged: FlagCounts = Field(description="Flags still open (not yet acknowledged) by severity")
    last_check_in: date | None
    adherence_7d: float | None
    gad7_last_band: str | None
    worst_grade_7d: int | None
