"""`flag.unacknowledged`: an urgent flag still open N minutes after it was opened or reopened is
announced again, once per opening, so the clinic can page its on-call (CLINICAL.md 4).

Each opening of an urgent flag sets its `unacknowledged_alert_due_at` (lifecycle.py); acknowledging or
resolving it clears it, and so does sending the alert, which is what makes it once per opening. This job
reads only the flags that are due (an index on that column), so it can run every few seconds: the
alert leaves within POLL_SECONDS of its deadline however long the time-rules pass takes. Safe on any
number of workers: the due flags are claimed with FOR UPDATE SKIP LOCKED (SQLite has one writer).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.accounts import Patient
from models.base import utcnow
from models.flags import Flag, FlagAction, FlagStatus, Severity
from services.alerting import outbox
from services.database import session_scope
from services.flags.lifecycle import add_step, to_public
from services.settings import Settings

POLL_SECONDS = 5.0
BATCH = 100


async def send_due_alerts(session: AsyncSession, now: datetime) -> int:
    """Announces up to BATCH due flags; returns how many."""
    rows = await session.execute(
        select(Flag, Patient)
        .join(Patient, col(Patient.id) == col(Flag.patient_id))
        .where(
            col(Flag.unacknowledged_alert_due_at) <= now,
            col(Flag.status) == FlagStatus.open.value,
            col(Flag.severity) == Severity.urgent.value,
        )
        .order_by(col(Flag.unacknowledged_alert_due_at))
        .limit(BATCH)
        .with_for_update(skip_locked=True, of=Flag)
        .execution_options(populate_existing=True)
    )
    sent = 0
    for flag, patient in rows.all():
        flag.unacknowledged_alert_due_at = None
        flag.updated_at = now
        add_step(flag, FlagAction.unacknowledged_alert_sent, now)
        session.add(flag)
        await session.flush()
        await outbox.flag_event(session, "flag.unacknowledged", patient, to_public(flag))
        sent += 1
    return sent


async def unacknowledged_alerts_job(factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    total = 0
    while True:
        async with session_scope(factory) as session:
            sent = await send_due_alerts(session, utcnow())
        total += sent
        if sent < BATCH:
            return total
