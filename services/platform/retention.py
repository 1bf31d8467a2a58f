"""Retention: the worker deletes what has outlived its use, a small batch per transaction.

Three kinds, each with its SYMPTRACK_RETENTION_*_DAYS (0 keeps forever):
- outbox events whose every delivery succeeded (or that had none), with those deliveries and their
  attempts. An event with a pending, failed (retrying) or dead delivery stays whatever its age: it is
  still to be sent, or an operator may retry it. Flags keep their own history and point at no event,
  so an open flag loses nothing;
- webhook attempts (the diagnostics of each send; the delivery keeps its last status and error);
- audit rows, after six years at least (settings.py).

Each batch is at most BATCH_ROWS rows of the kind (an event's deliveries and attempts go with it: one
per endpoint that wanted it), found through an index on the row's instant (migration 0014), deleted in
its own short transaction. On PostgreSQL a batch is claimed FOR UPDATE SKIP LOCKED, so two workers
running the job at once delete different rows and never wait on each other; SQLite has one writer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.audit import AuditEvent
from models.base import utcnow
from models.outbox import OutboxEvent
from models.webhooks import WebhookAttempt, WebhookDelivery
from services.settings import Settings

logger = logging.getLogger("symptrack.retention")

BATCH_ROWS = 1000
# A round deletes at most this many batches of each kind, then gives the worker back: a backlog of
# years goes at 5,000 rows a minute per kind, and no round holds anything for long.
BATCHES_PER_ROUND = 5
INTERVAL_SECONDS = 60.0

Batch = Callable[[AsyncSession, datetime, int], Awaitable[int]]


@dataclass
class Removed:
    outbox_events: int = 0
    attempts: int = 0
    audit_events: int = 0

    @property
    def total(self) -> int:
        return self.outbox_events + self.attempts + self.audit_events


async def retention_job(factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    removed = await apply_retention(factory, settings, utcnow())
    if removed.total:
        logger.info(
            "retention removed %d outbox events, %d webhook attempts, %d audit rows",
            removed.outbox_events,
            removed.attempts,
            removed.audit_events,
        )
    return removed.total


async def apply_retention(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    *,
    batch_rows: int = BATCH_ROWS,
    batches: int = BATCHES_PER_ROUND,
) -> Removed:
    """One round: up to `batches` batches of `batch_rows` rows of each kind older than its retention."""

    async def run(days: int, batch: Batch) -> int:
        if days <= 0:
            return 0
        cutoff, total = now - timedelta(days=days), 0
        for _ in range(batches):
            async with factory() as session:
                count = await batch(session, cutoff, batch_rows)
                await session.commit()
            total += count
            if count < batch_rows:
                break
        return total

    return Removed(
        outbox_events=await run(settings.retention_outbox_days, delete_delivered_events),
        attempts=await run(settings.retention_attempts_days, delete_attempts),
        audit_events=await run(settings.retention_audit_days, delete_audit_events),
    )


def _claim(statement: Any) -> Any:
    # PostgreSQL: rows another worker's batch holds are skipped, not waited for (SQLite ignores it).
    return statement.with_for_update(skip_locked=True)


async def delete_delivered_events(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Events created before `cutoff` none of whose deliveries is still pending, failed or dead."""
    undelivered = exists().where(
        col(WebhookDelivery.event_id) == col(OutboxEvent.id), col(WebhookDelivery.status) != "succeeded"
    )
    ids: list[uuid.UUID] = list(
        (
            await session.execute(
                _claim(
                    select(col(OutboxEvent.id))
                    .where(col(OutboxEvent.created_at) < cutoff, ~undelivered)
                    .order_by(col(OutboxEvent.created_at))
                    .limit(limit)
                )
            )
        ).scalars()
    )
    if not ids:
        return 0
    succeeded = select(col(WebhookDelivery.id)).where(
        col(WebhookDelivery.event_id).in_(ids), col(WebhookDelivery.status) == "succeeded"
    )
    await session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(succeeded)))
    await session.execute(
        delete(WebhookDelivery).where(
            col(WebhookDelivery.event_id).in_(ids), col(WebhookDelivery.status) == "succeeded"
        )
    )
    # Checked again as it deletes: an event is never removed while a delivery of it remains.
    any_delivery = exists().where(col(WebhookDelivery.event_id) == col(OutboxEvent.id))
    result = await session.execute(
        delete(OutboxEvent).where(col(OutboxEvent.id).in_(ids), ~any_delivery),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_attempts(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    return await _delete_oldest(
        session, col(WebhookAttempt.id), col(WebhookAttempt.attempted_at), WebhookAttempt, cutoff, limit
    )


async def delete_audit_events(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    return await _delete_oldest(
        session, col(AuditEvent.id), col(AuditEvent.occurred_at), AuditEvent, cutoff, limit
    )


async def _delete_oldest(
    session: AsyncSession, id_column: Any, time_column: Any, model: Any, cutoff: datetime, limit: int
) -> int:
    ids = list(
        (
            await session.execute(
                _claim(select(id_column).where(time_column < cutoff).order_by(time_column).limit(limit))
            )
        ).scalars()
    )
    if not ids:
        return 0
    result = await session.execute(
        delete(model).where(id_column.in_(ids)), execution_options={"synchronize_session": False}
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
