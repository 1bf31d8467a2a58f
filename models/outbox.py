"""The transactional outbox: events written in the same transaction as what they announce."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_event_organization_id_created_at", "organization_id", "created_at"),
        # Retention finds the oldest events by it (migration 0014).
        Index("ix_outbox_event_created_at", "created_at"),
    )

    # Also the `webhook-id` of every delivery attempt of this event.
    id: uuid.UUID = id_field()
    type: str = Field(max_length=40)  # "flag.created", "flag.escalated", "webhook.ping"
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    severity: str | None = Field(default=None, max_length=16)
    # The webhook body's `data`: no name, note or free text of the patient (API.md).
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = created_at_field()
