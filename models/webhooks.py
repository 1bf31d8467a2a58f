"""Alerting webhooks: the clinic's endpoints, a delivery per event and endpoint, every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool
from pydantic import Field as PydanticField
from pydantic.config import JsonDict
from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

import models.examples as ex
from models.base import UTCDateTime, created_at_field, id_field, utcnow
from models.flags import Severity
from models.types import Text as SafeText

EventType = Literal["flag.created", "flag.escalated", "flag.reopened", "flag.unacknowledged"]
# What an endpoint hears when it names no events: every flag event (API.md "Event types").
FLAG_EVENTS: list[EventType] = ["flag.created", "flag.escalated", "flag.reopened", "flag.unacknowledged"]


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2000)
    events: list[str] = Field(sa_column=Column(JSON, nullable=False))
    min_severity: str = Field(max_length=16)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    # whsec_...: signs every request. Stored encrypted (services/alerting/webhook_secrets.py); shown only in
    # the answer to creation or rotation.
    secret: str = Field(max_length=500)
    # After a rotation the old secret signs too, until this instant (24 hours). Encrypted too.
    previous_secret: str | None = Field(default=None, max_length=500)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Start of the current run of failed attempts; 5 days of it disables the endpoint.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint_id_created_at", "endpoint_id", "created_at"),
    )

    id: uuid.UUID = id_field()
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoint.id", ondelete="CASCADE")
    event_id: uuid.UUID = Field(foreign_key="outbox_event.id", ondelete="CASCADE", index=True)
    event_type: str = Field(max_length=40)
    # Claimed first: urgent flags before anything else that is due.
    urgent: bool = False
    # pending (due or waiting for its next attempt), succeeded, failed (retrying), dead (gave up).
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    # Position in the retry schedule; a manual retry starts it over.
    schedule_step: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # A worker holds the delivery until this instant, and renews it while it sends; a stopped
    # worker renews nothing, so its claim runs out within one lease (services/alerting/delivery.py).
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"
    # Retention finds the oldest attempts by it (migration 0014).
    __table_args__ = (Index("ix_webhook_attempt_attempted_at", "attempted_at"),)

    id: uuid.UUID = id_field()
    delivery_id: uuid.UUID = Field(foreign_key="webhook_delivery.id", ondelete="CASCADE", index=True)
    attempted_at: datetime = created_at_field()
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, max_length=500)
    # The first 2 KiB of the receiver's answer.
    response_body: str | None = Field(default=None, sa_column=Column(Text))


_ENDPOINT_IN: JsonDict = {
    "url": "https://alerts.clinic.example/symptrack",
    "events": ["flag.created", "flag.escalated", "flag.reopened", "flag.unacknowledged"],
    "min_severity": "urgent",
    "description": "On-call nurse pager",
}
_ENDPOINT_OUT: JsonDict = {
    "id": ex.ENDPOINT_ID,
    **_ENDPOINT_IN,
    "enabled": True,
    "disabled_reason": None,
    "created_at": ex.EARLIER,
    "updated_at": ex.EARLIER,
}


class EndpointCreate(BaseModel):
    """Where the organization's flag alerts go: an https URL, the events and the least severity wanted."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_ENDPOINT_IN]})

    url: SafeText = PydanticField(min_length=1, max_length=2000)
    events: list[EventType] = PydanticField(default_factory=lambda: list(FLAG_EVENTS), min_length=1)
    min_severity: Severity = Severity.urgent
    description: SafeText | None = PydanticField(default=None, max_length=500)


class EndpointUpdate(BaseModel):
    """The fields to change; `enabled: true` turns a disabled endpoint back on."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"enabled": True}, {"min_severity": "high"}]}
    )

    url: SafeText | None = PydanticField(default=None, min_length=1, max_length=2000)
    events: list[EventType] | None = PydanticField(default=None, min_length=1)
    min_severity: Severity | None = None
    description: SafeText | None = PydanticField(default=None, max_length=500)
    enabled: StrictBool | None = None


class EndpointPublic(BaseModel):
    """A webhook endpoint (its secret is shown only when created or rotated)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ENDPOINT_OUT]})

    id: uuid.UUID
    url: str
    events: list[str]
    min_severity: Severity
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointPublic):
    """The endpoint and the secret its deliveries are signed with (Standard Webhooks)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_ENDPOINT_OUT, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]
        }
    )

    secret: str = PydanticField(description="whsec_...: shown this once; store it now")


class DeliveryPublic(BaseModel):
    """An event's delivery to one endpoint, and how its attempts went."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.DELIVERY_ID,
                    "event_id": ex.EVENT_ID,
                    "event_type": "flag.created",
                    "status": "failed",
                    "attempts": 2,
                    "last_status_code": 503,
                    "next_attempt_at": "2026-05-05T01:35:04Z",
                    "last_error": None,
                    "created_at": "2026-05-05T01:30:04Z",
                }
            ]
        }
    )

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "succeeded", "failed", "dead"]
    attempts: int
    last_status_code: int | None
    next_attempt_at: datetime | None
    last_error: str | None = None
    created_at: datetime


class PingAnswer(BaseModel):
    """The queued webhook.ping event and its delivery (follow it at .../deliveries)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"event_id": ex.EVENT_ID, "delivery_id": ex.DELIVERY_ID}]}
    )

    event_id: uuid.UUID
    delivery_id: uuid.UUID
