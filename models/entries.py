"""What patients record from the phone: doses, anxiety scores, side-effect reports and check-ins.

Every entry carries the id the phone generated (retries are safe), the instant it happened in UTC,
the local date in the patient's zone at the time it was recorded, and an entered-in-error mark
instead of deletion.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, created_at_field

MAX_NOTE_LENGTH = 2000


class EntryKind(StrEnum):
    dose = "dose"
    anxiety = "anxiety"
    symptom = "symptom"
    check_in = "check_in"


class EntryRecord(SQLModel):
    """Bookkeeping every entry table shares."""

    id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", ondelete="CASCADE")
    local_date: date
    # Hash of the request's content: the same id with other content is a conflict, not a retry.
    content_hash: str = Field(max_length=64)
    created_at: datetime = created_at_field()
    created_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")
    entered_in_error_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    entered_in_error_by: uuid.UUID | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL"
    )


class CheckIn(EntryRecord, table=True):
    __tablename__ = "check_in"
    __table_args__ = (Index("ix_check_in_patient_id_local_date", "patient_id", "local_date"),)

    submitted_at: datetime = Field(sa_type=UTCDateTime)
    # {code: bool or 0-3}, every question of the catalog present (absent answers stored as no / 0).
    red_flags: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH)


class Dose(EntryRecord, table=True):
    __tablename__ = "dose"
    __table_args__ = (Index("ix_dose_patient_id_local_date", "patient_id", "local_date"),)

    taken_at: datetime = Field(sa_type=UTCDateTime)
    medication: str = Field(max_length=100)
    dose_mg: float
    status: str = Field(max_length=16)  # "taken" or "skipped"
    scheduled_for: datetime | None = Field(default=None, sa_type=UTCDateTime)
    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH)
    # Indexed: a check-in's answer and retries read its parts by this column.
    check_in_id: uuid.UUID | None = Field(
        default=None, foreign_key="check_in.id", ondelete="CASCADE", index=True
    )


class AnxietyScore(EntryRecord, table=True):
    __tablename__ = "anxiety_score"
    __table_args__ = (
        Index("ix_anxiety_score_patient_id_local_date", "patient_id", "local_date"),
        # The panel's last GAD-7 band: one step down this index, not a sort of the patient's history.
        Index(
            "ix_anxiety_score_patient_id_instrument_recorded_at", "patient_id", "instrument", "recorded_at"
        ),
    )

    recorded_at: datetime = Field(sa_type=UTCDateTime)
    instrument: str = Field(max_length=16)  # "gad7" or "rating"
    items: list[int] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    # GAD-7: the total 0-21 and its band; rating: the 0-10 score.
    total: int | None = None
    band: str | None = Field(default=None, max_length=16)
    score: int | None = None
    # Indexed: a check-in's answer and retries read its parts by this column.
    check_in_id: uuid.UUID | None = Field(
        default=None, foreign_key="check_in.id", ondelete="CASCADE", index=True
    )


class SymptomReport(EntryRecord, table=True):
    __tablename__ = "symptom_report"
    __table_args__ = (
        Index("ix_symptom_report_patient_id_local_date", "patient_id", "local_date"),
        Index("ix_symptom_report_patient_id_code_reported_at", "patient_id", "code", "reported_at"),
    )

    reported_at: datetime = Field(sa_type=UTCDateTime)
    code: str = Field(max_length=40)
    frequency: int | None = None
    severity: int | None = None
    interference: int | None = None
    present: int | None = None
    # Composite grade 0-3 (CLINICAL.md 2); null for presence-only terms.
    grade: int | None = None
    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH)
    # Indexed: a check-in's answer and retries read its parts by this column.
    check_in_id: uuid.UUID | None = Field(
        default=None, foreign_key="check_in.id", ondelete="CASCADE", index=True
    )
