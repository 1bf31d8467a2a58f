"""The audit trail: one row for every read or write of a patient's data."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, String, Uuid
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, id_field, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_patient_id_occurred_at", "patient_id", "occurred_at"),
        # Retention finds the oldest rows by it (migration 0014).
        Index("ix_audit_event_occurred_at", "occurred_at"),
    )

    id: uuid.UUID = id_field()
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # Who. No foreign keys: the trail outlives the rows it speaks of.
    actor_user_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, index=True))
    actor_role: str | None = Field(default=None, sa_column=Column(String(16)))
    organization_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, index=True))
    # Which patient, and what: the route template, e.g. "GET /v1/patients/{patient_id}".
    patient_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    # The account an account action was done to (a deactivation, a reactivation): staff have no
    # patient id, and the trail must still say whose access ended.
    target_user_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    action: str = Field(sa_column=Column(String(200), nullable=False))
    # "success", "denied" (outside the caller's scope, answered 404), "forbidden", or "error".
    outcome: str = Field(sa_column=Column(String(16), nullable=False))
    status_code: int | None = None
