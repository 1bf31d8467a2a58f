"""What providers read: a patient's summary over a window, and the panel of their patients."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from models.regimens import RegimenPublic


class Adherence(BaseModel):
    scheduled: int = Field(
        description="Scheduled doses whose time has come, by the regimen in force each day"
    )
    taken: int = Field(description="Scheduled doses with a taken dose on their local day")
    percent: float | None = Field(description="taken / scheduled, in %; null when nothing was scheduled")
    on_time_percent: float | None = Field(
        description="Scheduled doses with a taken dose within 60 minutes of their time / scheduled, in %"
    )


class DailyMg(BaseModel):
    date: date
    mg: float


class Gad7Point(BaseModel):
    date: date
    recorded_at: datetime
    total: int
    band: str


class Gad7Summary(BaseModel):
    first: int | None
    last: int | None
    change: int | None
    last_band: str | None
    series: list[Gad7Point]


class RatingPoint(BaseModel):
    date: date
    recorded_at: datetime
    score: int


class RatingSummary(BaseModel):
    mean: float | None
    series: list[RatingPoint]


class SymptomSummary(BaseModel):
    code: str
    reports: int
    days: int
    max_grade: int | None
    last_grade: int | None


class FlagCounts(BaseModel):
    urgent: int = 0
    high: int = 0
    routine: int = 0


class CheckInSummary(BaseModel):
    days: int
    percent: float


class PatientSummary(BaseModel):
    patient_id: uuid.UUID
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    regimen: RegimenPublic | None = Field(description="The regimen in force on the last day of the window")
    regimens: list[RegimenPublic] = Field(description="Every regimen in force at some point in the window")
    adherence: Adherence
    daily_mg: list[DailyMg]
    gad7: Gad7Summary
    rating: RatingSummary
    symptoms: list[SymptomSummary]
    open_flags: FlagCounts
    check_ins: CheckInSummary


class PanelRow(BaseModel):
    patient_id: uuid.UUID
    name: str
    open_flags: FlagCounts
    last_check_in: date | None
    adherence_7d: float | None
    gad7_last_band: str | None
    worst_grade_7d: int | None
