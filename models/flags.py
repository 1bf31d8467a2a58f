"""Flags: a rule of CLINICAL.md section 4 fired for a patient and waits for a clinician."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

import models.examples as ex
from models.base import UTCDateTime, created_at_field, id_field, utcnow
from models.types import Text, VisibleText


class Severity(StrEnum):
    """How soon a clinician must look (CLINICAL.md 4): urgent, high or routine."""

    urgent = "urgent"
    high = "high"
    routine = "routine"

    @property
    def rank(self) -> int:
        """Higher is more severe: routine 1, high 2, urgent 3."""
        return {"routine": 1, "high": 2, "urgent": 3}[self.value]


class FlagStatus(StrEnum):
    """Where a flag stands: open, acknowledged by a clinician, or resolved with a note."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Flag(SQLModel, table=True):
    __tablename__ = "flag"
    __table_args__ = (
        # At most one flag per patient, rule and symptom that is not resolved (CLINICAL.md 4).
        Index(
            "uq_flag_active_patient_rule_symptom",
            "patient_id",
            "rule",
            "symptom_key",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_flag_status_severity_rank_observed_at", "status", "severity_rank", "observed_at"),
        # /metrics counts open and acknowledged flags by rule and severity from this index alone.
        Index("ix_flag_status_rule_severity", "status", "rule", "severity"),
        Index("ix_flag_patient_id_created_at", "patient_id", "created_at"),
        # The unacknowledged-alert job reads only the flags whose alert is due.
        Index("ix_flag_unacknowledged_alert_due_at", "unacknowledged_alert_due_at"),
    )

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id", ondelete="CASCADE")
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE", index=True)
    rule: str = Field(max_length=40)
    severity: str = Field(max_length=16)
    severity_rank: int
    status: str = Field(default=FlagStatus.open.value, max_length=16)
    reason: str = Field(max_length=500)
    symptom_code: str | None = Field(default=None, max_length=40)
    # symptom_code or "": part of the uniqueness key, which NULL would not be.
    symptom_key: str = Field(default="", max_length=40)
    # For time-based rules: which lapse this is (e.g. "since:2026-03-01"), so a resolved lapse is not
    # raised again by the next run of the periodic job.
    episode: str | None = Field(default=None, max_length=80)
    # [{"type": "check_in", "id": "...", "retracted": false}, ...]
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # When the evidence happened (the entries' own times), not when the server raised the flag:
    # the first evidence and the latest (CLINICAL.md 4, "A flag's life").
    observed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_observed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # Every step of its life, oldest first: [{"at", "action", "by", "note", "reason"}, ...].
    history: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # An urgent flag still open at this instant sends `flag.unacknowledged`; cleared when that is sent
    # or the flag is acknowledged, set again when it is reopened.
    unacknowledged_alert_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: uuid.UUID | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL"
    )
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")
    note: str | None = Field(default=None, max_length=2000)


class EvidencePublic(BaseModel):
    """An entry the flag rests on."""

    model_config = ConfigDict(json_schema_extra={"examples": ex.FLAG["evidence"]})

    type: str
    id: uuid.UUID
    retracted: bool = PydanticField(default=False, description="The entry was later marked entered-in-error")


class FlagAction(StrEnum):
    """A step in a flag's life (CLINICAL.md 4)."""

    created = "created"
    evidence_added = "evidence_added"
    escalated = "escalated"
    reopened = "reopened"
    unacknowledged_alert_sent = "unacknowledged_alert_sent"
    acknowledged = "acknowledged"
    resolved = "resolved"


class FlagHistoryItem(BaseModel):
    """One step of a flag's life: what happened, when, by whom (absent: the system) and the note a
    clinician left with it. Steps that changed the reason keep the reason they gave."""

    model_config = ConfigDict(json_schema_extra={"examples": ex.FLAG["history"]})

    at: datetime
    action: FlagAction
    by: uuid.UUID | None = None
    note: str | None = None
    reason: str | None = None


class FlagPublic(BaseModel):
    """A rule of CLINICAL.md 4 fired for a patient: which (`rule`), how urgent, why in plain words, and
    the entries it rests on. No note or free text of the patient."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.FLAG]})

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str | None = PydanticField(
        default=None, description="The patient's name, for staff only (null for the patient and in webhooks)"
    )
    rule: str
    severity: Severity
    status: FlagStatus
    reason: str = PydanticField(description="The most recent evidence, in plain words")
    symptom_code: str | None = None
    evidence: list[EvidencePublic]
    observed_at: datetime = PydanticField(
        description="When the first evidence happened (the entry's own time), not when the flag was raised"
    )
    last_observed_at: datetime = PydanticField(description="When the latest evidence happened")
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: uuid.UUID | None = None
    resolved_at: datetime | None = None
    resolved_by: uuid.UUID | None = None
    note: str | None = PydanticField(
        default=None, description="The latest clinician's note; all are in `history`"
    )
    history: list[FlagHistoryItem] = PydanticField(default_factory=list)


class AcknowledgeRequest(BaseModel):
    """A clinician has seen the flag; the note is optional."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "Called the patient; on the way to the ED."}]},
    )

    note: Text | None = PydanticField(default=None, max_length=2000)


class ResolveRequest(BaseModel):
    """Close the flag; the note says what was done."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "Seen in the ED: mild angioedema, gabapentin stopped."}]},
    )

    note: VisibleText = PydanticField(min_length=1, max_length=2000)
