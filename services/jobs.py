"""Every background job the worker runs, registered here and only here."""

from __future__ import annotations

from services.alerting import delivery
from services.flags import time_rules, unacknowledged
from services.platform import retention
from services.platform.worker import RegisteredJob


def all_jobs() -> list[RegisteredJob]:
    return [
        _delivery_job(),
        # Not woken by commits: a pass over every patient must never sit before an urgent delivery.
        RegisteredJob("time_rules", time_rules.time_rules_job, time_rules.INTERVAL_SECONDS, wakeable=False),
        # Its own loop, every few seconds: an urgent flag left open is announced within seconds of its
        # deadline, never after a time-rules pass.
        RegisteredJob(
            "unacknowledged_alerts",
            unacknowledged.unacknowledged_alerts_job,
            unacknowledged.POLL_SECONDS,
            wakeable=False,
        ),
        # Deletes what is past its SYMPTRACK_RETENTION_*_DAYS, a few small batches a minute.
        RegisteredJob("retention", retention.retention_job, retention.INTERVAL_SECONDS, wakeable=False),
    ]


def _delivery_job() -> RegisteredJob:
    # One per worker: it holds that worker's sends in flight, which must finish when it stops.
    job = delivery.DeliveryJob()
    return RegisteredJob("webhook_delivery", job, delivery.POLL_SECONDS, drain=job.drain)
