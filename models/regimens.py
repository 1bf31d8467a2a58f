"""What the prescriber ordered: a wall-clock schedule in the patient's zone, from a start date."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue, StrictBool, field_validator, model_validator
from pydantic import Field as PydanticField
from pydantic.config import JsonDict
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

import models.examples as ex
from models.base import created_at_field, id_field
from models.types import Day, Number, Text, VisibleText

MAX_SINGLE_DOSE_MG = 3600  # CLINICAL.md: label maximum daily dose; no single dose can exceed it
# A data-sanity bound, not clinical advice: no dose is recorded finer than a hundredth of a milligram,
# so nothing smaller is a dose (1e-320 and the like); float noise such as 64.99999999999999 still passes.
MIN_DOSE_MG = 0.01
# A data-sanity bound on a prescribed daily maximum (an extra zero, 1e308), not clinical advice: the
# dose_above_max rule applies the label's 3600 mg/day whatever the regimen says.
MAX_DAILY_MG_SANITY = 10 * MAX_SINGLE_DOSE_MG
# Why a schedule above the label maximum was prescribed (CLINICAL.md 4, checks when a regimen is written).
MAX_OVERRIDE_REASON_LENGTH = 2000


class Regimen(SQLModel, table=True):
    __tablename__ = "regimen"
    __table_args__ = (Index("ix_regimen_patient_id_start_date", "patient_id", "start_date"),)

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id", ondelete="CASCADE")
    medication: str = Field(max_length=100)
    rxnorm: str | None = Field(default=None, max_length=20)
    # [{"time": "08:00", "dose_mg": 300}, ...], wall-clock times in the patient's zone.
    schedule: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    start_date: date
    # The last day in force. A regimen replaced before it began ends before its start: never in force.
    end_date: date | None = None
    max_daily_mg: float | None = None
    taper: bool = False
    indication: str | None = Field(default=None, max_length=100)
    # Set when the schedule exceeds the label maximum for the patient's kidney function (or 3600 mg) and
    # the prescriber wrote it anyway: while in force, dose_above_max reads this regimen's own limit.
    override_reason: str | None = Field(default=None, max_length=MAX_OVERRIDE_REASON_LENGTH)
    created_at: datetime = created_at_field()
    created_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")


_SCHEDULE: list[JsonValue] = [{"time": "08:00", "dose_mg": 300}, {"time": "20:00", "dose_mg": 300}]
REGIMEN_EXAMPLE_BODY: JsonDict = {
    "medication": "gabapentin",
    "rxnorm": "25480",
    "schedule": _SCHEDULE,
    "start_date": "2026-04-01",
    "end_date": None,
    "max_daily_mg": 900,
    "taper": False,
    "indication": "anxiety",
}


GABAPENTIN_RXNORM = "25480"  # CLINICAL.md: RxNorm ingredient 25480


class ScheduledDose(BaseModel):
    """A dose the prescriber ordered at a wall-clock time of the patient's day."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_SCHEDULE[0]]})

    time: Text = PydanticField(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, wall clock")
    dose_mg: Number = PydanticField(ge=MIN_DOSE_MG, le=MAX_SINGLE_DOSE_MG)


class RegimenCreate(BaseModel):
    """What the prescriber ordered from `start_date`: the daily schedule and its maximum."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [REGIMEN_EXAMPLE_BODY]})

    medication: VisibleText = PydanticField(default="gabapentin", min_length=1, max_length=100)
    rxnorm: Text | None = PydanticField(
        default=None,
        max_length=20,
        description=f"The medication's RxNorm code. Left out: {GABAPENTIN_RXNORM} for gabapentin, none for "
        "any other medication (exports then name it by text only, never by another drug's code).",
    )
    schedule: list[ScheduledDose] = PydanticField(min_length=1, max_length=24)
    start_date: Day
    end_date: Day | None = None
    max_daily_mg: Number | None = PydanticField(default=None, ge=MIN_DOSE_MG, le=MAX_DAILY_MG_SANITY)
    taper: StrictBool = False
    indication: Text | None = PydanticField(default="anxiety", max_length=100)
    override_reason: VisibleText | None = PydanticField(
        default=None,
        min_length=1,
        max_length=MAX_OVERRIDE_REASON_LENGTH,
        description=(
            "Why a schedule above the label maximum for the patient's creatinine clearance (or 3600 mg a "
            "day) is prescribed; without it such a schedule is refused (422 on `schedule`)."
        ),
    )

    @property
    def daily_mg(self) -> float:
        """The schedule's daily total."""
        return sum(slot.dose_mg for slot in self.schedule)

    @field_validator("schedule")
    @classmethod
    def _distinct_times(cls, schedule: list[ScheduledDose]) -> list[ScheduledDose]:
        times = [slot.time for slot in schedule]
        if len(set(times)) != len(times):
            raise ValueError("each time may appear once in a schedule")
        return sorted(schedule, key=lambda slot: slot.time)

    @model_validator(mode="after")
    def _gabapentin_code_for_gabapentin_only(self) -> RegimenCreate:
        if "rxnorm" not in self.model_fields_set and self.medication.strip().lower() == "gabapentin":
            self.rxnorm = GABAPENTIN_RXNORM
        return self

    @model_validator(mode="after")
    def _dates_in_order(self) -> RegimenCreate:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class RegimenPublic(BaseModel):
    """A regimen; `end_date` is its last day in force (null: open-ended)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.REGIMEN_ID,
                    "patient_id": ex.PATIENT_ID,
                    **REGIMEN_EXAMPLE_BODY,
                    "created_at": ex.EARLIER,
                }
            ]
        }
    )

    id: uuid.UUID
    patient_id: uuid.UUID
    medication: str
    rxnorm: str | None
    schedule: list[ScheduledDose]
    start_date: date
    end_date: date | None
    max_daily_mg: float | None
    taper: bool
    indication: str | None
    override_reason: str | None = PydanticField(
        default=None, description="Why the schedule exceeds the label maximum (null: it doesn't)"
    )
    created_at: datetime


class RegimenWritten(RegimenPublic):
    """The regimen just written, with the prescribing checks' warnings (CLINICAL.md 4)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.REGIMEN_ID,
                    "patient_id": ex.PATIENT_ID,
                    **REGIMEN_EXAMPLE_BODY,
                    "override_reason": None,
                    "created_at": ex.EARLIER,
                    "warnings": [],
                }
            ]
        }
    )

    warnings: list[str] = PydanticField(
        default_factory=list,
        description="What the prescriber should know about this regimen (empty: nothing)",
        examples=[["creatinine clearance unknown: the label's renal maximums cannot be applied"]],
    )
