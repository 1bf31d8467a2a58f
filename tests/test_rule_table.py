"""The rule table of CLINICAL.md section 4, read from the file itself, holds the code and the tests.

tests/test_rules_pure.py transcribes the table by hand (rule id -> severities) and checks every finding
against that transcription; this file checks the transcription against ../shared/CLINICAL.md, the
rules the code evaluates against the table's ids and order, and, for one scripted case per severity,
that each write-time rule raises exactly the severities the table gives it. A revision of the table
that the code has not followed fails here, not in a clinician's queue.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from models.flags import Severity
from services.clinical.rules import (
    AbovePrescribed,
    CheckInObs,
    DoseObs,
    Gad7Obs,
    Prescribed,
    Snapshot,
    SymptomObs,
    abrupt_stop,
    missed_check_ins,
)
from tests.test_rules_pure import CLINICAL_RULES, PENDING, RULES, TIME_BASED

# The shared clinical reference sits beside the checkouts (/work/shared next to /work/<worktree>).
CLINICAL_MD = Path(
    os.environ.get("SYMPTRACK_CLINICAL_MD", Path(__file__).resolve().parents[2] / "shared" / "CLINICAL.md")
)


def _rule_table() -> dict[str, frozenset[Severity]]:
    """The rows of the `| rule id | severity | fires when | source |` table, in order."""
    if not CLINICAL_MD.exists():
        pytest.skip(f"{CLINICAL_MD} is not here (set SYMPTRACK_CLINICAL_MD)")
    lines = CLINICAL_MD.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"^\|\s*rule id\s*\|\s*severity\s*\|", line))
    table: dict[str, frozenset[Severity]] = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rule, severities = (cell.strip() for cell in line.strip("|").split("|")[:2])
        assert rule not in table, f"{rule} twice in the table"
        table[rule] = frozenset(Severity(s.strip()) for s in severities.split(";"))
    return table


def test_the_tests_transcription_is_the_table_of_clinical_md() -> None:
    table = _rule_table()
    assert list(table) == list(CLINICAL_RULES)
    assert table == CLINICAL_RULES


def test_the_code_evaluates_the_table_s_rules_in_its_order() -> None:
    """Write-time rules in the transaction that records an entry, the others in the periodic job; a
    rule still being built on another branch (PENDING) may be missing, and nothing else."""
    table = _rule_table()
    write_time = [rule.__name__ for rule in RULES]
    in_code = set(write_time) | {abrupt_stop.__name__, missed_check_ins.__name__}
    assert {abrupt_stop.__name__, missed_check_ins.__name__} == TIME_BASED
    assert in_code <= set(table), in_code - set(table)
    assert set(table) - in_code <= PENDING, set(table) - in_code
    assert write_time == [rule for rule in table if rule in write_time]


def _ids() -> uuid.UUID:
    return uuid.uuid4()


DAY = date(2026, 5, 4)
NOON = datetime(2026, 5, 4, 12, tzinfo=UTC)


def _check_in(**answers: bool | int) -> CheckInObs:
    return CheckInObs(_ids(), DAY, dict(answers))


def _symptom(
    code: str, grade: int | None = None, severity: int | None = None, present: int | None = None
) -> SymptomObs:
    return SymptomObs(_ids(), code, DAY, NOON, grade, severity, present)


def _gad7(total: int, days_before: int = 0) -> Gad7Obs:
    return Gad7Obs(_ids(), NOON.replace(day=NOON.day - days_before), total)


def _scripted() -> list[Snapshot]:
    """One snapshot per severity of every write-time rule (the table's "fires when", briefly)."""
    earlier_fatigue = SymptomObs(_ids(), "fatigue", date(2026, 5, 1), NOON.replace(day=1), 0, 0, None)
    nausea = [
        SymptomObs(_ids(), "nausea", date(2026, 5, d), NOON.replace(day=d), 2, 2, None) for d in (2, 3, 4)
    ]
    new_gad7, prev_low = _gad7(15), _gad7(14, 3)
    rising, prev_two = _gad7(6), _gad7(2, 3)
    doses = [DoseObs(_ids(), DAY, 1800), DoseObs(_ids(), DAY, 1900)]
    over = [DoseObs(_ids(), DAY - timedelta(days=2), 900), DoseObs(_ids(), DAY, 900)]
    return [
        Snapshot(new_check_ins=[_check_in(face_swelling=True)]),
        Snapshot(new_check_ins=[_check_in(slow_breathing=True)]),
        Snapshot(new_symptoms=[_symptom("drowsiness", 1, 3)], has_lung_disease=True),
        Snapshot(new_check_ins=[_check_in(self_harm_thoughts=1)]),
        Snapshot(new_check_ins=[_check_in(fever=True)], nearby_symptoms=[_symptom("rash", present=1)]),
        Snapshot(new_check_ins=[_check_in(fever=True, swollen_glands=True)]),
        Snapshot(new_symptoms=[_symptom("hives", present=1)]),
        Snapshot(new_check_ins=[_check_in(seizure=True)]),
        Snapshot(new_symptoms=[_symptom("dizziness", 3, 2)]),
        Snapshot(new_symptoms=[_symptom("fatigue", 2, 2)], earlier_symptoms=[earlier_fatigue]),
        Snapshot(new_gad7=[new_gad7], previous_gad7={new_gad7.id: prev_low}),
        Snapshot(new_gad7=[rising], previous_gad7={rising.id: prev_two}),
        Snapshot(new_doses=doses[-1:], doses_on_days={DAY: doses}, prescribed_on_days={DAY: None}),
        # 900 mg taken against 600 prescribed, on 2 of 7 days (the product defaults).
        Snapshot(
            new_doses=over[-1:],
            doses_on_days={d.local_date: [d] for d in over},
            prescribed_on_days={d.local_date: Prescribed(600) for d in over},
            above_prescribed=AbovePrescribed(50, 2, 7),
        ),
        Snapshot(new_check_ins=[_check_in(fall=True)]),
        Snapshot(new_symptoms=nausea[-1:], earlier_symptoms=nausea[:-1]),
    ]


def test_each_write_time_rule_raises_exactly_the_severities_of_its_row() -> None:
    table = _rule_table()
    seen: dict[str, set[Severity]] = {}
    for snapshot in _scripted():
        for rule in RULES:
            for finding in rule(snapshot):
                assert finding.rule == rule.__name__
                seen.setdefault(finding.rule, set()).add(finding.severity)
    for rule in RULES:
        if rule.__name__ in PENDING and rule.__name__ not in seen:
            continue  # built on another branch: its own tests script it
        assert seen.get(rule.__name__) == set(table[rule.__name__]), rule.__name__
