"""Gauges read from the database at scrape time, so every process reports the same truth."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.flags import Flag
from models.webhooks import WebhookDelivery
from services.localtime import utc


@dataclass(frozen=True)
class Gauges:
    flags: list[tuple[str, str, str, int]]  # rule, severity, status, count
    deliveries: list[tuple[str, int]]  # status, count
    outbox_lag_seconds: float  # age of the oldest delivery that is due and not sent


async def read_gauges(session: AsyncSession) -> Gauges:
    flags = await session.execute(
        select(col(Flag.rule), col(Flag.severity), col(Flag.status), func.count())
        .group_by(col(Flag.rule), col(Flag.severity), col(Flag.status))
        .order_by(col(Flag.rule), col(Flag.severity), col(Flag.status))
    )
    deliveries = await session.execute(
        select(col(WebhookDelivery.status), func.count())
        .group_by(col(WebhookDelivery.status))
        .order_by(col(WebhookDelivery.status))
    )
    now = utcnow()
    oldest_due = await session.scalar(
        select(func.min(WebhookDelivery.next_attempt_at)).where(
            col(WebhookDelivery.status).in_(("pending", "failed")),
            col(WebhookDelivery.next_attempt_at) <= now,
        )
    )
    lag = 0.0
    if oldest_due is not None:
        lag = max(0.0, (now - utc(oldest_due)).total_seconds())
    return Gauges(
        flags=[(r, s, st, int(c)) for r, s, st, c in flags],
        deliveries=[(s, int(c)) for s, c in deliveries],
        outbox_lag_seconds=lag,
    )
