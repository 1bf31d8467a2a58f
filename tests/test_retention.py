"""Retention: old delivered alerts, old attempts and audit rows past six years go, a bounded batch at a
time; anything still to be sent or retried, and anything recent, stays."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.accounts import Organization
from models.audit import AuditEvent
from models.base import utcnow
from models.outbox import OutboxEvent
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.database import create_engine, create_session_factory
from services.jobs import all_jobs
from services.platform.retention import apply_retention
from services.settings import Settings
from tests.databases import settings_for

NOW = utcnow()
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=1)


@pytest.fixture
async def factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    yield create_session_factory(engine)
    await engine.dispose()


@dataclass
class Alerts:
    factory: async_sessionmaker[AsyncSession]
    organization_id: uuid.UUID
    endpoint_id: uuid.UUID

    async def event(self, at: datetime, *statuses: str, attempt_at: datetime | None = None) -> uuid.UUID:
        """An event created at `at` with a delivery in each status (and an attempt of each)."""
        async with self.factory() as session:
            event = OutboxEvent(
                type="flag.created", organization_id=self.organization_id, data={}, created_at=at
            )
            session.add(event)
            await session.flush()
            for status in statuses:
                delivery = WebhookDelivery(
                    endpoint_id=self.endpoint_id,
                    event_id=event.id,
                    event_type=event.type,
                    status=status,
                    created_at=at,
                )
                session.add(delivery)
                await session.flush()
                session.add(
                    WebhookAttempt(delivery_id=delivery.id, attempted_at=attempt_at or at, latency_ms=5)
                )
            await session.commit()
            return event.id

    async def audit(self, at: datetime, count: int = 1) -> None:
        async with self.factory() as session:
            session.add_all(
                AuditEvent(occurred_at=at, action="GET /v1/panel", outcome="success") for _ in range(count)
            )
            await session.commit()

    async def count(self, model: type, *where: object) -> int:
        async with self.factory() as session:
            return int(
                (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
            )

    async def event_ids(self) -> set[uuid.UUID]:
        async with self.factory() as session:
            return set((await session.execute(select(col(OutboxEvent.id)))).scalars())


@pytest.fixture
async def alerts(factory: async_sessionmaker[AsyncSession]) -> Alerts:
    async with factory() as session:
        organization = Organization(name="Clinic")
        session.add(organization)
        await session.flush()
        endpoint = WebhookEndpoint(
            organization_id=organization.id,
            url="https://alerts.example/hook",
            events=["flag.created"],
            min_severity="routine",
            secret="encrypted",
        )
        session.add(endpoint)
        await session.commit()
        return Alerts(factory, organization.id, endpoint.id)


async def test_old_delivered_alerts_go_and_everything_still_needed_stays(
    alerts: Alerts, settings: Settings
) -> None:
    gone = {
        await alerts.event(OLD, "succeeded"),
        await alerts.event(OLD),  # the organization had no endpoint that wanted it
    }
    kept = {
        await alerts.event(OLD, "pending"),
        await alerts.event(OLD, "failed"),
        await alerts.event(OLD, "dead", attempt_at=RECENT),  # an operator may retry it
        await alerts.event(OLD, "succeeded", "dead"),
        await alerts.event(RECENT, "succeeded"),
    }
    await alerts.audit(NOW - timedelta(days=7 * 365), count=2)
    await alerts.audit(NOW - timedelta(days=5 * 365))

    removed = await apply_retention(alerts.factory, settings, NOW)

    assert await alerts.event_ids() == kept
    assert (removed.outbox_events, removed.audit_events) == (len(gone), 2)
    # Every delivery of a kept event is still there, the succeeded one beside the dead one included.
    assert await alerts.count(WebhookDelivery) == 6
    # Attempts go by their own age (30 days): the dead delivery's recent one and the new event's stay.
    assert await alerts.count(WebhookAttempt) == 2
    assert removed.attempts == 4
    assert await alerts.count(AuditEvent) == 1


async def test_zero_keeps_forever(alerts: Alerts, settings: Settings) -> None:
    await alerts.event(OLD, "succeeded")
    await alerts.audit(NOW - timedelta(days=20 * 365))
    forever = settings.model_copy(
        update={"retention_outbox_days": 0, "retention_attempts_days": 0, "retention_audit_days": 0}
    )
    assert (await apply_retention(alerts.factory, forever, NOW)).total == 0
    assert (
        await alerts.count(OutboxEvent),
        await alerts.count(WebhookAttempt),
        await alerts.count(AuditEvent),
    ) == (
        1,
        1,
        1,
    )


async def test_a_round_deletes_bounded_batches_and_the_next_round_goes_on(
    alerts: Alerts, settings: Settings
) -> None:
    for _ in range(25):
        await alerts.event(OLD, "succeeded")
    await alerts.audit(NOW - timedelta(days=7 * 365), count=25)

    first = await apply_retention(alerts.factory, settings, NOW, batch_rows=10, batches=2)
    assert (first.outbox_events, first.attempts, first.audit_events) == (20, 5, 20)
    second = await apply_retention(alerts.factory, settings, NOW, batch_rows=10, batches=2)
    assert (second.outbox_events, second.audit_events) == (5, 5)
    assert await alerts.count(OutboxEvent) == await alerts.count(AuditEvent) == 0


async def test_two_workers_at_once_delete_each_row_once(alerts: Alerts, settings: Settings) -> None:
    for _ in range(30):
        await alerts.event(OLD, "succeeded")
    await alerts.audit(NOW - timedelta(days=7 * 365), count=30)

    rounds = await asyncio.gather(
        *(apply_retention(alerts.factory, settings, NOW, batch_rows=7, batches=10) for _ in range(2))
    )
    assert sum(r.outbox_events for r in rounds) == 30
    assert sum(r.audit_events for r in rounds) == 30
    assert await alerts.count(OutboxEvent) == await alerts.count(WebhookDelivery) == 0


def test_the_worker_runs_retention() -> None:
    assert "retention" in {job.name for job in all_jobs()}


def test_audit_rows_are_kept_at_least_six_years() -> None:
    with pytest.raises(ValidationError, match="SYMPTRACK_RETENTION_AUDIT_DAYS must be 0"):
        settings_for("sqlite+aiosqlite://", retention_audit_days=365)
    assert settings_for("sqlite+aiosqlite://", retention_audit_days=0).retention_audit_days == 0
    defaults = settings_for("sqlite+aiosqlite://")
    assert (
        defaults.retention_outbox_days,
        defaults.retention_attempts_days,
        defaults.retention_audit_days,
    ) == (
        90,
        30,
        2190,
    )
