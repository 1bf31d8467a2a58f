"""A patient's logged history, day by day, as rows ready for COPY.

What a phone would have sent: doses at their scheduled times (mostly taken, a little late or early,
some missed or skipped), an evening check-in with a 0-10 rating on most days, a GAD-7 every two
weeks, and now and then a side effect, graded by the app's own clinical functions. Rows skip the API
(they are history, not load), so `content_hash` is a placeholder the bench never retries against.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from bench.population import MEDICATION, BenchPatient
from services.clinical.catalog import RED_FLAGS
from services.clinical.gad7 import score_gad7
from services.clinical.grading import complete_attributes, composite_grade

HISTORY_HASH = "bench-history"
# Every red-flag question answered "no", as the app stores a check-in (absent answers are no or 0).
ALL_NO = json.dumps({code: 0 if q.scale == "0-3" else False for code, q in RED_FLAGS.items()})
GAD7_EVERY_DAYS = 14
CHECK_IN_AT = time(21, 0)

ENTRY_COLUMNS = ("id", "patient_id", "local_date", "content_hash", "created_at", "created_by")
COLUMNS: dict[str, tuple[str, ...]] = {
    "check_in": (*ENTRY_COLUMNS, "submitted_at", "red_flags"),
    "dose": (*ENTRY_COLUMNS, "taken_at", "medication", "dose_mg", "status", "scheduled_for", "check_in_id"),
    "anxiety_score": (
        *ENTRY_COLUMNS,
        "recorded_at",
        "instrument",
        "items",
        "total",
        "band",
        "score",
        "check_in_id",
    ),
    "symptom_report": (
        *ENTRY_COLUMNS,
        "reported_at",
        "code",
        "frequency",
        "severity",
        "interference",
        "present",
        "grade",
        "check_in_id",
    ),
}
TABLES = tuple(COLUMNS)  # check_in first: the others point at it


def _symptom_variants() -> list[tuple[str, int | None, int | None, int | None, int | None, int | None]]:
    """(code, frequency, severity, interference, present, grade) of common gabapentin side effects,
    mild ones many times over so they dominate, graded by the app's own CLINICAL.md tables."""
    reports = [
        ("dizziness", {"severity": 1, "interference": 0}, 6),
        ("dizziness", {"severity": 2, "interference": 1}, 3),
        ("drowsiness", {"severity": 1, "interference": 1}, 6),
        ("drowsiness", {"severity": 2, "interference": 2}, 2),
        ("fatigue", {"severity": 1, "interference": 1}, 4),
        ("coordination", {"severity": 1, "interference": 0}, 2),
        ("dry_mouth", {"severity": 1}, 3),
        ("nausea", {"frequency": 1, "severity": 1}, 2),
        ("limb_swelling", {"frequency": 1, "severity": 1, "interference": 0}, 1),
        ("blurred_vision", {"severity": 3, "interference": 2}, 1),
    ]
    variants = []
    for code, given, weight in reports:
        attributes = complete_attributes(code, given)
        grade = composite_grade(code, attributes)
        row = (
            code,
            attributes.get("frequency"),
            attributes.get("severity"),
            attributes.get("interference"),
            attributes.get("present"),
            grade,
        )
        variants.extend([row] * weight)
    return variants


SYMPTOMS = _symptom_variants()


@dataclass
class Rows:
    """Rows per table, in `COLUMNS` order."""

    tables: dict[str, list[tuple[object, ...]]] = field(default_factory=lambda: {t: [] for t in TABLES})

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def _ids(rng: random.Random) -> Iterator[uuid.UUID]:
    while True:
        yield uuid.UUID(int=rng.getrandbits(128), version=4)


def patient_history(patient: BenchPatient, first: date, last: date, rng: random.Random, into: Rows) -> None:
    """Every entry of `patient` on local days first..last (inclusive), appended to `into`."""
    zone = patient.zone
    ids = _ids(rng)
    behaviour = patient.behaviour
    pid, uid = patient.patient_id, patient.user_id
    doses, check_ins = into.tables["dose"], into.tables["check_in"]
    scores, symptoms = into.tables["anxiety_score"], into.tables["symptom_report"]
    gad7_offset = patient.index % GAD7_EVERY_DAYS
    day = first
    while day <= last:
        for at, mg in patient.logged_doses_on(day):
            roll = rng.random()
            if roll > behaviour.adherence:
                continue  # forgotten: no entry at all
            scheduled = datetime.combine(day, at, tzinfo=zone)
            if roll > behaviour.adherence - 0.02:
                doses.append(
                    (
                        next(ids),
                        pid,
                        day,
                        HISTORY_HASH,
                        scheduled,
                        uid,
                        scheduled,
                        MEDICATION,
                        mg,
                        "skipped",
                        scheduled,
                        None,
                    )
                )
                continue
            taken = scheduled + timedelta(minutes=rng.randrange(-20, 50))
            doses.append(
                (
                    next(ids),
                    pid,
                    day,
                    HISTORY_HASH,
                    taken,
                    uid,
                    taken,
                    MEDICATION,
                    mg,
                    "taken",
                    scheduled,
                    None,
                )
            )
        if rng.random() < behaviour.check_in_rate:
            check_in_id = next(ids)
            submitted = datetime.combine(day, CHECK_IN_AT, tzinfo=zone) + timedelta(minutes=rng.randrange(90))
            check_ins.append((check_in_id, pid, day, HISTORY_HASH, submitted, uid, submitted, ALL_NO))
            rating = max(0, min(10, behaviour.anxiety_baseline + rng.randrange(-2, 3)))
            scores.append(
                (
                    next(ids),
                    pid,
                    day,
                    HISTORY_HASH,
                    submitted,
                    uid,
                    submitted,
                    "rating",
                    None,
                    None,
                    None,
                    rating,
                    check_in_id,
                )
            )
            if rng.random() < behaviour.symptom_rate:
                code, frequency, severity, interference, present, grade = rng.choice(SYMPTOMS)
                symptoms.append(
                    (
                        next(ids),
                        pid,
                        day,
                        HISTORY_HASH,
                        submitted,
                        uid,
                        submitted,
                        code,
                        frequency,
                        severity,
                        interference,
                        present,
                        grade,
                        check_in_id,
                    )
                )
        if day.toordinal() % GAD7_EVERY_DAYS == gad7_offset:
            items = [max(0, min(3, behaviour.anxiety_baseline // 3 + rng.randrange(-1, 2))) for _ in range(7)]
            total, band = score_gad7(items)
            recorded = datetime.combine(day, time(10, 0), tzinfo=zone)
            scores.append(
                (
                    next(ids),
                    pid,
                    day,
                    HISTORY_HASH,
                    recorded,
                    uid,
                    recorded,
                    "gad7",
                    json.dumps(items),
                    total,
                    band,
                    None,
                    None,
                )
            )
        day += timedelta(days=1)
