"""Composite grading (CLINICAL.md 2) and GAD-7 scoring (CLINICAL.md 1) against a second transcription.

The EXPECTED_* tables below are transcribed from CLINICAL.md independently of services/clinical/grading.py,
one entry per attribute combination in the source's own layout, so a typo in either copy fails a test.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.clinical.catalog import ATTRIBUTE_RANGES, TERMS, Attribute, Term
from services.clinical.gad7 import gad7_band, score_gad7
from services.clinical.grading import ReportProblem, complete_attributes, composite_grade

FREQ = Attribute.frequency
SEV = Attribute.severity
INTER = Attribute.interference
PRESENT = Attribute.present

Grades = dict[tuple[int, ...], int | None]

# Keys are the attribute scores in the term's order; a first attribute of 0 forces the rest to 0, so
# combinations such as (0, 1, 0) are not listed: composite_grade must refuse them.
# fmt: off
# F,S,I: CLINICAL.md 'Three attributes' tables F=1..F=4; row S0-S4, columns I0-I4.
EXPECTED_F_S_I: Grades = {
    (0, 0, 0): 0,  # first attribute 0 gives grade 0
    (1, 0, 0): 0, (1, 0, 1): 1, (1, 0, 2): 1, (1, 0, 3): 2, (1, 0, 4): 2,  # F=1 S0
    (1, 1, 0): 1, (1, 1, 1): 1, (1, 1, 2): 1, (1, 1, 3): 2, (1, 1, 4): 2,  # F=1 S1
    (1, 2, 0): 1, (1, 2, 1): 2, (1, 2, 2): 2, (1, 2, 3): 2, (1, 2, 4): 3,  # F=1 S2
    (1, 3, 0): 2, (1, 3, 1): 2, (1, 3, 2): 2, (1, 3, 3): 3, (1, 3, 4): 3,  # F=1 S3
    (1, 4, 0): 2, (1, 4, 1): 2, (1, 4, 2): 3, (1, 4, 3): 3, (1, 4, 4): 3,  # F=1 S4
    (2, 0, 0): 0, (2, 0, 1): 1, (2, 0, 2): 1, (2, 0, 3): 2, (2, 0, 4): 2,  # F=2 S0
    (2, 1, 0): 1, (2, 1, 1): 1, (2, 1, 2): 1, (2, 1, 3): 2, (2, 1, 4): 2,  # F=2 S1
    (2, 2, 0): 2, (2, 2, 1): 2, (2, 2, 2): 2, (2, 2, 3): 3, (2, 2, 4): 3,  # F=2 S2
    (2, 3, 0): 2, (2, 3, 1): 2, (2, 3, 2): 2, (2, 3, 3): 3, (2, 3, 4): 3,  # F=2 S3
    (2, 4, 0): 2, (2, 4, 1): 2, (2, 4, 2): 3, (2, 4, 3): 3, (2, 4, 4): 3,  # F=2 S4
    (3, 0, 0): 1, (3, 0, 1): 1, (3, 0, 2): 1, (3, 0, 3): 2, (3, 0, 4): 2,  # F=3 S0
    (3, 1, 0): 1, (3, 1, 1): 1, (3, 1, 2): 1, (3, 1, 3): 2, (3, 1, 4): 2,  # F=3 S1
    (3, 2, 0): 2, (3, 2, 1): 2, (3, 2, 2): 2, (3, 2, 3): 3, (3, 2, 4): 3,  # F=3 S2
    (3, 3, 0): 2, (3, 3, 1): 2, (3, 3, 2): 3, (3, 3, 3): 3, (3, 3, 4): 3,  # F=3 S3
    (3, 4, 0): 2, (3, 4, 1): 2, (3, 4, 2): 3, (3, 4, 3): 3, (3, 4, 4): 3,  # F=3 S4
    (4, 0, 0): 1, (4, 0, 1): 1, (4, 0, 2): 1, (4, 0, 3): 2, (4, 0, 4): 2,  # F=4 S0
    (4, 1, 0): 1, (4, 1, 1): 1, (4, 1, 2): 2, (4, 1, 3): 2, (4, 1, 4): 3,  # F=4 S1
    (4, 2, 0): 2, (4, 2, 1): 2, (4, 2, 2): 2, (4, 2, 3): 3, (4, 2, 4): 3,  # F=4 S2
    (4, 3, 0): 2, (4, 3, 1): 2, (4, 3, 2): 3, (4, 3, 3): 3, (4, 3, 4): 3,  # F=4 S3
    (4, 4, 0): 2, (4, 4, 1): 2, (4, 4, 2): 3, (4, 4, 3): 3, (4, 4, 4): 3,  # F=4 S4
}
# F then S: CLINICAL.md 'Two attributes' row 'F then S'; first attribute 1-4, second 0-4.
EXPECTED_F_THEN_S: Grades = {
    (0, 0): 0,  # first attribute 0 gives grade 0
    (1, 0): 1, (1, 1): 1, (1, 2): 1, (1, 3): 2, (1, 4): 2,  # F=1
    (2, 0): 1, (2, 1): 1, (2, 2): 2, (2, 3): 2, (2, 4): 2,  # F=2
    (3, 0): 1, (3, 1): 1, (3, 2): 2, (3, 3): 3, (3, 4): 3,  # F=3
    (4, 0): 1, (4, 1): 1, (4, 2): 2, (4, 3): 3, (4, 4): 3,  # F=4
}
# S then I: CLINICAL.md 'Two attributes' row 'S then I'; first attribute 1-4, second 0-4.
EXPECTED_S_THEN_I: Grades = {
    (0, 0): 0,  # first attribute 0 gives grade 0
    (1, 0): 1, (1, 1): 1, (1, 2): 1, (1, 3): 2, (1, 4): 2,  # S=1
    (2, 0): 1, (2, 1): 1, (2, 2): 2, (2, 3): 2, (2, 4): 3,  # S=2
    (3, 0): 1, (3, 1): 2, (3, 2): 2, (3, 3): 3, (3, 4): 3,  # S=3
    (4, 0): 2, (4, 1): 2, (4, 2): 2, (4, 3): 3, (4, 4): 3,  # S=4
}
# F then I: CLINICAL.md 'Two attributes' row 'F then I'; first attribute 1-4, second 0-4.
EXPECTED_F_THEN_I: Grades = {
    (0, 0): 0,  # first attribute 0 gives grade 0
    (1, 0): 1, (1, 1): 1, (1, 2): 1, (1, 3): 2, (1, 4): 2,  # F=1
    (2, 0): 1, (2, 1): 1, (2, 2): 1, (2, 3): 2, (2, 4): 2,  # F=2
    (3, 0): 1, (3, 1): 1, (3, 2): 2, (3, 3): 3, (3, 4): 3,  # F=3
    (4, 0): 1, (4, 1): 1, (4, 2): 2, (4, 3): 3, (4, 4): 3,  # F=4
}
# frequency only: CLINICAL.md 'One attribute', score 0-4.
EXPECTED_FREQUENCY_ONLY: Grades = {(0,): 0, (1,): 1, (2,): 1, (3,): 2, (4,): 3}
# severity only: CLINICAL.md 'One attribute', score 0-4.
EXPECTED_SEVERITY_ONLY: Grades = {(0,): 0, (1,): 1, (2,): 2, (3,): 3, (4,): 3}

# fmt: on
EXPECTED_PRESENCE: Grades = {(0,): None, (1,): None}  # presence-only terms get no composite grade

# Shape -> (name, expected grades, (graded, refused) combinations over the attribute ranges).
# Graded: 1 all-zero combination plus 4 first-attribute values times 5 per later attribute.
# Refused: first attribute 0 with any later attribute above 0 (5 ** later - 1).
SHAPES: dict[tuple[Attribute, ...], tuple[str, Grades, tuple[int, int]]] = {
    (FREQ, SEV, INTER): ("F, S, I", EXPECTED_F_S_I, (101, 24)),
    (FREQ, SEV): ("F then S", EXPECTED_F_THEN_S, (21, 4)),
    (SEV, INTER): ("S then I", EXPECTED_S_THEN_I, (21, 4)),
    (FREQ, INTER): ("F then I", EXPECTED_F_THEN_I, (21, 4)),
    (FREQ,): ("frequency only", EXPECTED_FREQUENCY_ONLY, (5, 0)),
    (SEV,): ("severity only", EXPECTED_SEVERITY_ONLY, (5, 0)),
    (PRESENT,): ("presence", EXPECTED_PRESENCE, (2, 0)),
}
# No catalog term is F, I today, so the exhaustive checks grade that table through a test-only term.
TEST_ONLY_CODE = "test_only_term"


def _codes_with_shape(shape: tuple[Attribute, ...], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    codes = [code for code, term in TERMS.items() if term.attributes == shape]
    if not codes:
        monkeypatch.setitem(TERMS, TEST_ONLY_CODE, Term(TEST_ONLY_CODE, "test only", shape, None, None))
        codes = [TEST_ONLY_CODE]
    return codes


def _combinations(shape: tuple[Attribute, ...]) -> list[tuple[int, ...]]:
    ranges = [range(ATTRIBUTE_RANGES[a][0], ATTRIBUTE_RANGES[a][1] + 1) for a in shape]
    return list(itertools.product(*ranges))


def _report(shape: tuple[Attribute, ...], scores: tuple[int, ...]) -> dict[str, int]:
    return {attribute.value: score for attribute, score in zip(shape, scores, strict=True)}


# --- composite_grade: every combination of every table -------------------------------------------------


def test_every_catalog_term_has_a_table_shape() -> None:
    assert {term.attributes for term in TERMS.values()} <= set(SHAPES)


def test_composite_grade_matches_every_combination_of_every_table(monkeypatch: pytest.MonkeyPatch) -> None:
    counts: dict[str, tuple[int, int]] = {}
    term_checks = 0
    for shape, (name, expected, _) in SHAPES.items():
        codes = _codes_with_shape(shape, monkeypatch)
        graded = refused = 0
        for scores in _combinations(shape):
            report = _report(shape, scores)
            if scores in expected:
                graded += 1
                for code in codes:
                    assert composite_grade(code, report) == expected[scores], (code, scores)
                    term_checks += 1
            else:
                # Only branching excludes a combination: first attribute 0, a later one above 0.
                assert scores[0] == 0 and any(scores[1:]), (name, scores)
                refused += 1
                for code in codes:
                    with pytest.raises(ReportProblem, match="branching") as problem:
                        composite_grade(code, report)
                    assert problem.value.field in {a.value for a in shape[1:]}
                    term_checks += 1
        assert graded == len(expected), name  # every transcribed cell was reached
        counts[name] = (graded, refused)

    assert counts == {name: count for name, _, count in SHAPES.values()}
    assert counts == {
        "F, S, I": (101, 24),
        "F then S": (21, 4),
        "S then I": (21, 4),
        "F then I": (21, 4),
        "frequency only": (5, 0),
        "severity only": (5, 0),
        "presence": (2, 0),
    }
    assert sum(graded for graded, _ in counts.values()) == 176
    assert sum(refused for _, refused in counts.values()) == 36
    # Per term: 2 F,S,I x 125 + 2 F,S x 25 + 8 S,I x 25 + 1 test-only F,I x 25 + 1 F x 5 + 2 S x 5 + 2 P x 2.
    assert term_checks == 250 + 50 + 200 + 25 + 5 + 10 + 4 == 544


@pytest.mark.parametrize(
    ("code", "report", "grade"),
    [
        # F,S,I tables: the table is chosen by frequency, rows are severity, columns are interference.
        ("limb_swelling", {"frequency": 4, "severity": 1, "interference": 4}, 3),  # F=4 row S1 "1 1 2 2 3"
        ("limb_swelling", {"frequency": 1, "severity": 0, "interference": 0}, 0),  # F=1 row S0 starts 0
        ("sad_mood", {"frequency": 2, "severity": 0, "interference": 0}, 0),  # F=2 row S0 starts 0
        ("sad_mood", {"frequency": 3, "severity": 0, "interference": 0}, 1),  # F=3 row S0 starts 1
        ("sad_mood", {"frequency": 1, "severity": 2, "interference": 1}, 2),  # F=1 row S2 "1 2 2 2 3"
        ("sad_mood", {"frequency": 2, "severity": 2, "interference": 0}, 2),  # F=2 row S2 "2 2 2 3 3"
        ("limb_swelling", {"frequency": 3, "severity": 3, "interference": 2}, 3),  # F=3 row S3 "2 2 3 3 3"
        ("limb_swelling", {"frequency": 0, "severity": 0, "interference": 0}, 0),  # first attribute 0
        # Two attributes: "F then S" F=2 is "1 1 2 2 2"; F=3 is "1 1 2 3 3".
        ("nausea", {"frequency": 2, "severity": 2}, 2),
        ("vomiting", {"frequency": 3, "severity": 3}, 3),
        ("nausea", {"frequency": 1, "severity": 0}, 1),
        # "S then I": S=1 "1 1 1 2 2", S=3 "1 2 2 3 3", S=4 "2 2 2 3 3".
        ("dizziness", {"severity": 1, "interference": 0}, 1),
        ("drowsiness", {"severity": 3, "interference": 1}, 2),
        ("fatigue", {"severity": 4, "interference": 0}, 2),
        ("dizziness", {"severity": 0, "interference": 0}, 0),
        # One attribute: frequency only "0 1 1 2 3"; severity only "0 1 2 3 3".
        ("diarrhea", {"frequency": 2}, 1),
        ("diarrhea", {"frequency": 4}, 3),
        ("dry_mouth", {"severity": 2}, 2),
        ("constipation", {"severity": 4}, 3),
        # Presence-only terms get no composite grade.
        ("rash", {"present": 1}, None),
        ("hives", {"present": 0}, None),
    ],
)
def test_composite_grade_spot_checks(code: str, report: dict[str, int], grade: int | None) -> None:
    assert composite_grade(code, report) == grade


def test_f_then_i_table_spot_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = _codes_with_shape((FREQ, INTER), monkeypatch)
    assert composite_grade(code, {"frequency": 2, "interference": 2}) == 1  # F=2 "1 1 1 2 2"
    assert composite_grade(code, {"frequency": 3, "interference": 2}) == 2  # F=3 "1 1 2 3 3"


@pytest.mark.parametrize(
    ("code", "report", "field"),
    [
        ("headache", {"severity": 1}, "code"),
        ("dizziness", {"severity": 0}, "interference"),  # not completed: call complete_attributes first
        ("dizziness", {"severity": 2, "interference": None}, "interference"),
        ("limb_swelling", {"frequency": 2, "severity": 1}, "interference"),
        ("dizziness", {"severity": 5, "interference": 0}, "severity"),
        ("dizziness", {"severity": 1, "interference": 1, "frequency": 1}, "frequency"),
        ("rash", {"present": 2}, "present"),
        ("rash", {}, "present"),
    ],
)
def test_composite_grade_refuses_what_is_not_a_completed_report(
    code: str, report: dict[str, int], field: str
) -> None:
    with pytest.raises(ReportProblem) as problem:
        composite_grade(code, report)
    assert problem.value.field == field


# --- The tables' monotonicity, checked on the independent transcription -----------------------------


def test_the_tables_never_fall_when_one_attribute_rises() -> None:
    breaks: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    checked: dict[str, int] = {}
    for name, expected, _ in SHAPES.values():
        checked[name] = 0
        for scores, grade in expected.items():
            for index in range(len(scores)):
                raised = (*scores[:index], scores[index] + 1, *scores[index + 1 :])
                if grade is None or raised not in expected:  # no grade, beyond the range, or branching
                    continue
                checked[name] += 1
                higher = expected[raised]
                assert higher is not None
                if higher < grade:
                    breaks.append((name, scores, raised))
    assert breaks == []  # CLINICAL.md's tables are monotone: no cell falls when one attribute rises
    # Pairs (combination, same combination with one attribute one higher) that are both valid.
    assert checked == {
        "F, S, I": 236,
        "F then S": 32,
        "S then I": 32,
        "F then I": 32,
        "frequency only": 4,
        "severity only": 4,
        "presence": 0,
    }


# --- Hypothesis: properties over valid completed reports of every catalog term -----------------------


@st.composite
def completed_reports(draw: st.DrawFn) -> tuple[str, dict[str, int]]:
    code = draw(st.sampled_from(sorted(TERMS)))
    first, *later = TERMS[code].attributes
    first_score = draw(st.integers(*ATTRIBUTE_RANGES[first]))
    report = {first.value: first_score}
    for attribute in later:
        report[attribute.value] = 0 if first_score == 0 else draw(st.integers(*ATTRIBUTE_RANGES[attribute]))
    return code, report


@given(completed_reports())
def test_composite_grade_is_0_to_3_for_every_valid_report(case: tuple[str, dict[str, int]]) -> None:
    code, report = case
    grade = composite_grade(code, report)
    if TERMS[code].attributes == (PRESENT,):
        assert grade is None
    else:
        assert grade is not None and 0 <= grade <= 3


@given(completed_reports())
def test_composite_grade_never_falls_when_one_attribute_rises(case: tuple[str, dict[str, int]]) -> None:
    code, report = case
    grade = composite_grade(code, report)
    if grade is None:
        return
    first, *later = TERMS[code].attributes
    for attribute in TERMS[code].attributes:
        if attribute in later and report[first.value] == 0:
            continue  # branching: a later attribute cannot rise while the first is 0
        if report[attribute.value] == ATTRIBUTE_RANGES[attribute][1]:
            continue
        raised = {**report, attribute.value: report[attribute.value] + 1}
        higher = composite_grade(code, raised)
        assert higher is not None and higher >= grade, (code, report, raised)


@given(completed_reports())
def test_complete_attributes_keeps_a_completed_report(case: tuple[str, dict[str, int]]) -> None:
    code, report = case
    assert complete_attributes(code, report) == report


# --- complete_attributes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "given_attributes", "completed"),
    [
        ("dizziness", {"severity": 0}, {"severity": 0, "interference": 0}),
        ("dizziness", {"severity": 0, "interference": None}, {"severity": 0, "interference": 0}),
        ("dizziness", {"severity": 0, "interference": 0}, {"severity": 0, "interference": 0}),
        ("sad_mood", {"frequency": 0}, {"frequency": 0, "severity": 0, "interference": 0}),
        (
            "limb_swelling",
            {"frequency": 0, "severity": None, "interference": 0},
            {"frequency": 0, "severity": 0, "interference": 0},
        ),
        ("nausea", {"frequency": 0, "severity": None}, {"frequency": 0, "severity": 0}),
        ("diarrhea", {"frequency": 0}, {"frequency": 0}),
        ("rash", {"present": 0}, {"present": 0}),
        ("rash", {"present": 1}, {"present": 1}),
        (
            "limb_swelling",
            {"interference": 1, "frequency": 2, "severity": 3},
            {"frequency": 2, "severity": 3, "interference": 1},
        ),
    ],
)
def test_complete_attributes_fills_zeros_after_a_first_attribute_of_0(
    code: str, given_attributes: dict[str, int | None], completed: dict[str, int]
) -> None:
    result = complete_attributes(code, given_attributes)
    assert result == completed
    assert list(result) == [a.value for a in TERMS[code].attributes]  # exactly the term's, in order


@pytest.mark.parametrize(
    ("code", "given_attributes", "field"),
    [
        ("dizziness", {"severity": 0, "interference": 2}, "interference"),
        ("sad_mood", {"frequency": 0, "severity": 1}, "severity"),
        ("sad_mood", {"frequency": 0, "severity": 0, "interference": 4}, "interference"),
        ("nausea", {"frequency": 0, "severity": 3}, "severity"),
    ],
)
def test_a_later_attribute_above_0_after_a_first_of_0_is_refused(
    code: str, given_attributes: dict[str, int | None], field: str
) -> None:
    with pytest.raises(ReportProblem, match="branching") as problem:
        complete_attributes(code, given_attributes)
    assert problem.value.field == field


@pytest.mark.parametrize(
    ("code", "given_attributes", "field"),
    [
        ("dizziness", {}, "severity"),  # the first attribute is always required
        ("dizziness", {"interference": 1}, "severity"),
        ("dizziness", {"severity": None, "interference": 0}, "severity"),
        ("dizziness", {"severity": 2}, "interference"),  # first above 0: all are required
        ("dizziness", {"severity": 2, "interference": None}, "interference"),
        ("limb_swelling", {"frequency": 1, "severity": 1}, "interference"),
        ("limb_swelling", {"frequency": 1, "interference": 1}, "severity"),
        ("nausea", {"frequency": 4}, "severity"),
        ("rash", {}, "present"),
    ],
)
def test_missing_required_attributes_are_refused(
    code: str, given_attributes: dict[str, int | None], field: str
) -> None:
    with pytest.raises(ReportProblem, match="required") as problem:
        complete_attributes(code, given_attributes)
    assert problem.value.field == field


@pytest.mark.parametrize(
    ("code", "given_attributes", "field"),
    [
        ("dizziness", {"frequency": 1, "severity": 1, "interference": 1}, "frequency"),
        ("dizziness", {"severity": 0, "frequency": None}, "frequency"),
        ("nausea", {"frequency": 1, "severity": 1, "interference": 0}, "interference"),
        ("rash", {"present": 1, "severity": 2}, "severity"),
        ("dry_mouth", {"severity": 1, "present": 1}, "present"),
        ("diarrhea", {"frequency": 1, "colour": 2}, "colour"),
    ],
)
def test_attributes_the_term_does_not_have_are_refused(
    code: str, given_attributes: dict[str, int | None], field: str
) -> None:
    with pytest.raises(ReportProblem, match="has no attribute") as problem:
        complete_attributes(code, given_attributes)
    assert problem.value.field == field


@pytest.mark.parametrize(
    ("code", "given_attributes", "field"),
    [
        ("dizziness", {"severity": -1, "interference": 0}, "severity"),
        ("dizziness", {"severity": 5, "interference": 0}, "severity"),
        ("dizziness", {"severity": 2, "interference": 5}, "interference"),
        ("dizziness", {"severity": 0, "interference": -1}, "interference"),
        ("limb_swelling", {"frequency": 5, "severity": 0, "interference": 0}, "frequency"),
        ("rash", {"present": 2}, "present"),
        ("hives", {"present": -1}, "present"),
    ],
)
def test_out_of_range_values_are_refused(
    code: str, given_attributes: dict[str, int | None], field: str
) -> None:
    with pytest.raises(ReportProblem, match="from") as problem:
        complete_attributes(code, given_attributes)
    assert problem.value.field == field


@pytest.mark.parametrize(
    ("code", "given_attributes", "field"),
    [
        ("dizziness", {"severity": True, "interference": 0}, "severity"),
        ("dizziness", {"severity": 1, "interference": False}, "interference"),
        ("dizziness", {"severity": False}, "severity"),
        ("rash", {"present": True}, "present"),
        ("dizziness", {"severity": 1.0, "interference": 0}, "severity"),
        ("dry_mouth", {"severity": "2"}, "severity"),
    ],
)
def test_values_that_are_not_whole_numbers_are_refused(
    code: str, given_attributes: dict[str, object], field: str
) -> None:
    with pytest.raises(ReportProblem, match="whole number") as problem:
        complete_attributes(code, given_attributes)  # type: ignore[arg-type]
    assert problem.value.field == field


def test_an_unknown_code_is_refused() -> None:
    with pytest.raises(ReportProblem, match="unknown side-effect code") as problem:
        complete_attributes("headache", {"severity": 1})
    assert problem.value.field == "code"


def test_report_problem_is_a_value_error_with_field_and_message() -> None:
    problem = ReportProblem("severity", "must be from 0 to 4")
    assert isinstance(problem, ValueError)
    assert (problem.field, problem.msg) == ("severity", "must be from 0 to 4")
    assert str(problem) == "severity: must be from 0 to 4"


# --- GAD-7 (CLINICAL.md 1) ----------------------------------------------------------------------------


def _items_totalling(total: int) -> list[int]:
    items = [3] * (total // 3) + ([total % 3] if total % 3 else [])
    return items + [0] * (7 - len(items))


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_edges(total: int, band: str) -> None:
    items = _items_totalling(total)
    assert len(items) == 7 and sum(items) == total
    assert score_gad7(items) == (total, band)
    assert score_gad7(tuple(items)) == (total, band)
    assert gad7_band(total) == band


def test_gad7_bands_cover_0_to_21() -> None:
    bands = [gad7_band(total) for total in range(22)]
    assert bands == ["minimal"] * 5 + ["mild"] * 5 + ["moderate"] * 5 + ["severe"] * 7


@pytest.mark.parametrize("total", [-1, 22, True])
def test_gad7_band_refuses_impossible_totals(total: int) -> None:
    with pytest.raises(ReportProblem) as problem:
        gad7_band(total)
    assert problem.value.field == "total"


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([1] * 6, "items"),  # a partial GAD-7 is rejected, never scored
        ([1] * 8, "items"),
        ([], "items"),
        ("0123012", "items"),
        ([0, 0, 4, 0, 0, 0, 0], "items.2"),
        ([0, 0, 0, 0, 0, 0, -1], "items.6"),
        ([True, 0, 0, 0, 0, 0, 0], "items.0"),
        ([0, 1, 2, 3, 1.0, 0, 0], "items.4"),
        ([0, None, 0, 0, 0, 0, 0], "items.1"),
    ],
)
def test_score_gad7_refuses_anything_but_seven_items_of_0_to_3(items: object, field: str) -> None:
    with pytest.raises(ReportProblem) as problem:
        score_gad7(items)  # type: ignore[arg-type]
    assert problem.value.field == field
