"""Gauges read from the database at scrape time, so every process reports the same truth.

A scrape's cost must not grow with the tables: each statement reads at most `CAP` entries of one
status, and from an index alone (an index-only scan: flags through `ix_flag_status_rule_severity`,
deliveries through `ix_webhook_delivery_due`), so a count saturates at `CAP` index entries instead
of reading a table page per row counted (what made a scrape take 0.43 s at 2M deliveries). Selecting
a column outside the index would bring those page reads back: tests/test_metrics_scrape_plans.py
holds every statement to index-only scans. Only the states an operator acts on are counted (flags
open or acknowledged; deliveries pending, failed or dead): resolved flags and succeeded deliveries
only ever grow, and their totals belong in the database's own reporting, not in every scrape.

An index-only scan still visits the table for pages changed since their last vacuum (the visibility
map): autovacuum keeps them few; a table just bulk-loaded and never vacuumed pays them all once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.flags import Flag, FlagStatus
from models.webhooks import WebhookDelivery
from services.localtime import utc

CAP = 10_000  # rows read per status at most; a count at CAP means "CAP or more"
FLAG_STATUSES = (FlagStatus.open.value, FlagStatus.acknowledged.value)
DELIVERY_STATUSES = ("pending", "failed", "dead")
_DUE_STATUSES = ("pending", "failed")


@dataclass(frozen=True)
class Gauges:
    flags: list[tuple[str, str, str, int]]  # rule, severity, status, count (at most CAP per status)
    deliveries: list[tuple[str, int]]  # status, count (at most CAP)
    outbox_lag_seconds: float  # age of the oldest delivery that is due and not sent


async def read_gauges(session: AsyncSession, cap: int = CAP) -> Gauges:
    flags: list[tuple[str, str, str, int]] = []
    for status in FLAG_STATUSES:
        some = (
            select(col(Flag.rule), col(Flag.severity)).where(col(Flag.status) == status).limit(cap).subquery()
        )
        counted = await session.execute(
            select(some.c.rule, some.c.severity, func.count())
            .group_by(some.c.rule, some.c.severity)
            .order_by(some.c.rule, some.c.severity)
        )
        flags.extend((str(r), str(s), status, int(c)) for r, s, c in counted)
    flags.sort()
    deliveries: list[tuple[str, int]] = []
    for status in DELIVERY_STATUSES:
        some = (
            # The index's own column: nothing to read from the table.
            select(col(WebhookDelivery.status))
            .where(col(WebhookDelivery.status) == status)
            .limit(cap)
            .subquery()
        )
        count = int(await session.scalar(select(func.count()).select_from(some)) or 0)
        if count:
            deliveries.append((status, count))
    now = utcnow()
    lag = 0.0
    for status in _DUE_STATUSES:  # the index's first row per status: one row read each
        oldest_due = await session.scalar(
            select(col(WebhookDelivery.next_attempt_at))
            .where(col(WebhookDelivery.status) == status, col(WebhookDelivery.next_attempt_at) <= now)
            .order_by(col(WebhookDelivery.next_attempt_at))
            .limit(1)
        )
        if oldest_due is not None:
            lag = max(lag, (now - utc(oldest_due)).total_seconds())
    return Gauges(flags=flags, deliveries=deliveries, outbox_lag_seconds=lag)
