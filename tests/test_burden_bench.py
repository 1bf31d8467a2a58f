"""The alert-burden replay (bench/burden.py) counts what the rules really raised: a tiny cohort through
the real sync and time-rules job, with one scripted seizure, and the arithmetic of the report."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select

from bench import burden, cohort
from models.entries import CheckIn
from models.outbox import OutboxEvent
from services.database import create_engine, create_session_factory, session_scope
from services.settings import Settings

SEIZURE = next(e for e in cohort.SCRIPTED_EVENTS if e.rule == "seizure")


async def test_one_scripted_seizure_is_one_urgent_alert(settings: Settings) -> None:
    options = burden.Options(patients=5, days=3, warmup=0, seed=1, concurrency=1)
    engine = create_engine(settings)
    try:
        factory = create_session_factory(engine)
        result = await burden.replay(factory, settings, options, "b", (SEIZURE,))
        async with session_scope(factory) as session:
            stored_check_ins = await session.scalar(select(func.count()).select_from(CheckIn))
            urgent_events = await session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.severity == "urgent")
            )
    finally:
        await engine.dispose()

    assert not result.refused, result.refused
    assert result.check_ins == stored_check_ins and stored_check_ins > 5  # 5 patients, 3 days
    [outcome] = result.outcomes
    assert (outcome.rule, outcome.raised) == ("seizure", "urgent")
    # The stable cohort raises no urgent flag: the seizure is the only urgent alert, counted once.
    urgent = [a for a in result.counted() if a.severity == "urgent"]
    assert [(a.rule, a.type) for a in urgent] == [("seizure", "flag.created")] and urgent_events == 1
    assert result.by_rule()["seizure"] == {"urgent": 1}
    assert result.urgent_per_500_per_day() == 1 / 3 * 500 / 5
    assert result.patient_weeks_flagged() >= 1
    report = burden.markdown(result)
    assert "| seizure | 1 | 0 | 0 |" in report
    assert "| seizure answered yes | seizure | urgent | urgent |" in report


def test_the_counts_per_check_in_day_and_week() -> None:
    options = burden.Options(patients=2, days=14, warmup=7)
    result = burden.Result("a", options, date(2026, 1, 1), check_ins=50)
    one, two = uuid.uuid4(), uuid.uuid4()

    def alert(day: int, patient: uuid.UUID, rule: str, severity: str) -> burden.Alert:
        return burden.Alert(day, patient, uuid.uuid4(), rule, severity, "flag.created")

    result.alerts = [
        alert(3, one, "fall", "high"),  # warm-up: not counted
        alert(7, one, "fall", "high"),  # week 0
        alert(8, one, "seizure", "urgent"),  # week 0 again: the same patient-week
        alert(20, two, "anxiety_worsening", "routine"),  # routine: no patient-week
        alert(20, two, "abrupt_stop", "high"),  # week 1
    ]
    assert result.by_rule() == {
        "fall": {"high": 1},
        "seizure": {"urgent": 1},
        "anxiety_worsening": {"routine": 1},
        "abrupt_stop": {"high": 1},
    }
    assert result.per_100(result.severity_total("high")) == 4.0  # 2 of 50 check-ins
    assert result.urgent_per_500_per_day() == 1 / 14 * 500 / 2
    assert (result.weeks(), result.patient_weeks_flagged(), result.patients_flagged()) == (2, 2, 2)
