"""The write-time flag rules of CLINICAL.md section 4 as pure functions over `Snapshot`s: no database, no
HTTP. Each rule fires just inside its threshold and not just outside, with CLINICAL.md's rule id and
severity and the entries that triggered it as evidence; hypothesis checks properties over many snapshots.

The HTTP-level tests (tests/test_flag_rules.py) prove the loader and the API carry these findings; these
tests pin the rules themselves, fast, for whoever rewrites the write path. The time-based rules are in
tests/test_time_rules_pure.py.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from models.flags import Severity
from services.clinical.rules import (
    ADVICE,
    AbovePrescribed,
    CheckInObs,
    DoseObs,
    Finding,
    Gad7Obs,
    Prescribed,
    Ref,
    Rule,
    Snapshot,
    SymptomObs,
    above_prescribed,
    daily_limits,
    dose_above_max,
    label_max_daily_mg,
    persistent_symptom_rule,
    write_time_rules,
)
from services.settings import Settings

URGENT, HIGH, ROUTINE = Severity.urgent, Severity.high, Severity.routine

# CLINICAL.md 4 (second revision), transcribed in the table's order: rule id -> its severities (dress is
# "urgent; high"). tests/test_rule_table.py holds this transcription to the file itself.
CLINICAL_RULES: dict[str, frozenset[Severity]] = {
    "anaphylaxis": frozenset({URGENT}),
    "respiratory_depression": frozenset({URGENT}),
    "suicidality": frozenset({URGENT}),
    "dress": frozenset({URGENT, HIGH}),
    "skin_reaction": frozenset({HIGH}),
    "seizure": frozenset({URGENT}),
    "severe_symptom": frozenset({HIGH}),
    "worsening_symptom": frozenset({HIGH}),
    "anxiety_severe": frozenset({HIGH}),
    "anxiety_worsening": frozenset({ROUTINE}),
    "dose_above_max": frozenset({HIGH}),
    "above_prescribed": frozenset({HIGH}),
    "abrupt_stop": frozenset({HIGH}),
    "fall": frozenset({HIGH}),
    "persistent_symptom": frozenset({ROUTINE}),
    "missed_check_ins": frozenset({ROUTINE}),
}
TIME_BASED = {"abrupt_stop", "missed_check_ins"}
# Rules of the table the code may not list yet (none: every rule of the second revision is built); a
# rule named here is held to the table's order once the code lists it.
PENDING: set[str] = set()
# Rules whose flags are kept apart per side effect ("one open flag per patient, rule and symptom").
PER_SYMPTOM = {"severe_symptom", "worsening_symptom", "persistent_symptom", "skin_reaction"}
RED_FLAG_RULES = {"anaphylaxis", "respiratory_depression", "suicidality", "dress", "seizure", "fall"}
YES_NO_QUESTIONS = (
    "face_swelling",
    "breathing_trouble",
    "slow_breathing",
    "hard_to_wake",
    "fever",
    "swollen_glands",
    "seizure",
    "fall",
)


def _default(name: str) -> int:
    value = Settings.model_fields[name].default
    assert isinstance(value, int)
    return value


# The settings' product defaults (CLINICAL.md: 3 of 7 days at grade >= 2), not the environment's.
PERSISTENT = (
    _default("persistent_symptom_min_days"),
    _default("persistent_symptom_window_days"),
    _default("persistent_symptom_min_grade"),
)
RULES: list[Rule] = write_time_rules(*PERSISTENT)
# above_prescribed's (CLINICAL.md: 50% or more over the scheduled total on 2 of the last 7 local days).
ABOVE_PRESCRIBED = AbovePrescribed(
    Settings.model_fields["above_prescribed_percent"].default,
    _default("above_prescribed_min_days"),
    _default("above_prescribed_window_days"),
)

BASE_DAY = date(2026, 5, 4)


def day(offset: int) -> date:
    return BASE_DAY + timedelta(days=offset)


def moment(offset: int, hour: int = 12) -> datetime:
    return datetime.combine(day(offset), time(hour), tzinfo=UTC)


def check_in(offset: int = 0, **answers: bool | int) -> CheckInObs:
    return CheckInObs(uuid.uuid4(), day(offset), dict(answers))


def symptom(
    code: str,
    offset: int = 0,
    grade: int | None = None,
    severity: int | None = None,
    present: int | None = None,
    hour: int = 12,
) -> SymptomObs:
    return SymptomObs(uuid.uuid4(), code, day(offset), moment(offset, hour), grade, severity, present)


def rash(offset: int = 0, present: int = 1) -> SymptomObs:
    return symptom("rash", offset, present=present)


def gad7(total: int, offset: int = 0) -> Gad7Obs:
    return Gad7Obs(uuid.uuid4(), moment(offset), total)


def dose(mg: float, offset: int = 0) -> DoseObs:
    return DoseObs(uuid.uuid4(), day(offset), mg)


def evaluate(snapshot: Snapshot, rules: list[Rule] = RULES) -> list[Finding]:
    return [finding for rule in rules for finding in rule(snapshot)]


def rule_ids(snapshot: Snapshot) -> set[str]:
    return {finding.rule for finding in evaluate(snapshot)}


def the_finding(snapshot: Snapshot, rule: str) -> Finding:
    """The one finding of `rule` over the whole set, checked against CLINICAL.md's severity."""
    findings = [f for f in evaluate(snapshot) if f.rule == rule]
    assert len(findings) == 1, findings
    finding = findings[0]
    assert finding.severity in CLINICAL_RULES[rule]
    assert finding.reason and finding.episode is None
    return finding


def refs(kind: str, *entries: CheckInObs | SymptomObs | Gad7Obs | DoseObs) -> tuple[Ref, ...]:
    return tuple(Ref(kind, entry.id) for entry in entries)


# ---- the set of rules and the advice ----------------------------------------------------------------


def test_the_write_time_rules_are_clinical_md_s_in_its_order() -> None:
    names = [rule.__name__ for rule in RULES]
    expected = [r for r in CLINICAL_RULES if r not in TIME_BASED and (r not in PENDING or r in names)]
    assert names == expected


def test_an_empty_snapshot_raises_nothing() -> None:
    assert evaluate(Snapshot()) == []


def test_advice_is_clinical_md_section_5_word_for_word() -> None:
    assert ADVICE == {
        URGENT: "This can be serious. Call your local emergency number now, or go to the nearest emergency "
        "department. Your care team has been alerted.",
        HIGH: "Your care team has been told and will contact you. If you feel worse, call them or your local "
        "emergency number.",
        ROUTINE: "Your care team will review this.",
    }


# ---- red-flag answers of a check-in -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "rule"),
    [
        ({"face_swelling": True}, "anaphylaxis"),
        ({"breathing_trouble": True}, "anaphylaxis"),
        ({"face_swelling": True, "breathing_trouble": True}, "anaphylaxis"),
        ({"hard_to_wake": True}, "respiratory_depression"),
        ({"slow_breathing": True}, "respiratory_depression"),  # no longer filed under anaphylaxis
        ({"hard_to_wake": True, "slow_breathing": True}, "respiratory_depression"),
        ({"self_harm_thoughts": 1}, "suicidality"),
        ({"self_harm_thoughts": 2}, "suicidality"),
        ({"self_harm_thoughts": 3}, "suicidality"),
        ({"seizure": True}, "seizure"),
        ({"fall": True}, "fall"),
        ({"fever": True, "swollen_glands": True}, "dress"),  # high: no rash
    ],
)
def test_a_red_flag_answer_raises_its_rule_alone(answers: dict[str, bool | int], rule: str) -> None:
    entry = check_in(**answers)
    snapshot = Snapshot(new_check_ins=[entry])
    assert rule_ids(snapshot) == {rule}
    finding = the_finding(snapshot, rule)
    assert finding.evidence == refs("check_in", entry)  # one check-in is one piece of evidence
    assert finding.symptom_code is None


@pytest.mark.parametrize(
    "answers",
    [
        {},  # an app may send only the yes answers: absent means no
        {code: False for code in YES_NO_QUESTIONS} | {"self_harm_thoughts": 0},
        {"fever": True},
        {"swollen_glands": True},
    ],
)
def test_no_answers_zero_and_unpaired_answers_raise_nothing(answers: dict[str, bool | int]) -> None:
    assert evaluate(Snapshot(new_check_ins=[check_in(**answers)])) == []


def test_each_new_check_in_is_its_own_finding() -> None:
    first, second = check_in(0, fall=True), check_in(1, fall=True)
    findings = evaluate(Snapshot(new_check_ins=[first, second]))
    assert [(f.rule, f.evidence) for f in findings] == [
        ("fall", refs("check_in", first)),
        ("fall", refs("check_in", second)),
    ]


# ---- respiratory_depression from drowsiness or shortness of breath ---------------------------------

# CLINICAL.md 3, respiratory risk: any of the three yes/no facts, or age 65 or over. BASE_DAY is in 2026:
# born 1961 is 65 that year, born 1962 is 64.
RISKS: dict[str, dict[str, Any]] = {
    "none": {},
    "opioid_or_benzodiazepine": {"takes_opioids_or_benzodiazepines": True},
    "other_sedating_medicine": {"takes_other_cns_depressants": True},
    "lung_disease": {"has_lung_disease": True},
    "aged_65": {"birth_year": 1961},
    "aged_64": {"birth_year": 1962},
    "aged_90": {"birth_year": 1936},
}
AT_RISK = {"opioid_or_benzodiazepine", "other_sedating_medicine", "lung_disease", "aged_65", "aged_90"}


@pytest.mark.parametrize("risk", list(RISKS))
@pytest.mark.parametrize("code", ["drowsiness", "shortness_of_breath"])
@pytest.mark.parametrize("severity", [2, 3, 4])
def test_severe_drowsiness_or_breathlessness_is_respiratory_depression_only_at_respiratory_risk(
    risk: str, code: str, severity: int
) -> None:
    report = symptom(code, grade=1, severity=severity)
    snapshot = Snapshot(new_symptoms=[report], **RISKS[risk])
    fires = severity >= 3 and risk in AT_RISK
    assert ("respiratory_depression" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "respiratory_depression")
        assert finding.evidence == refs("symptom", report) and finding.symptom_code is None
        assert "at risk of slowed breathing" in finding.reason
    # Without the risk, severity 3 or more is still a severe side effect: high, never urgent.
    assert ("severe_symptom" in rule_ids(snapshot)) is (severity >= 3)


@pytest.mark.parametrize(
    ("reported_on", "birth_year", "fires"),
    [
        (date(2026, 12, 31), 1962, False),  # 64 in the year of the entry
        (date(2027, 1, 1), 1962, True),  # 65: the entry's year, not today's, counts
        (date(2026, 12, 31), 1961, True),
    ],
)
def test_age_65_is_counted_at_the_time_of_the_entry(reported_on: date, birth_year: int, fires: bool) -> None:
    at = datetime.combine(reported_on, time(12), tzinfo=UTC)
    report = SymptomObs(uuid.uuid4(), "drowsiness", reported_on, at, 1, 3, None)
    snapshot = Snapshot(new_symptoms=[report], birth_year=birth_year)
    assert ("respiratory_depression" in rule_ids(snapshot)) is fires


def test_the_reason_names_every_risk_in_plain_words() -> None:
    snapshot = Snapshot(
        new_symptoms=[symptom("shortness_of_breath", grade=2, severity=4)],
        takes_opioids_or_benzodiazepines=True,
        has_lung_disease=True,
        birth_year=1950,
    )
    assert the_finding(snapshot, "respiratory_depression").reason == (
        "Severe shortness of breath (severity 4) in a patient at risk of slowed breathing: takes an "
        "opioid or benzodiazepine, has lung disease and is 65 or over."
    )


@pytest.mark.parametrize("risk", sorted(AT_RISK))
def test_another_severe_side_effect_at_respiratory_risk_is_not_respiratory_depression(risk: str) -> None:
    snapshot = Snapshot(new_symptoms=[symptom("fatigue", grade=2, severity=4)], **RISKS[risk])
    # A first report of fatigue: severe_symptom alone (a first report no longer "rises from 0").
    assert rule_ids(snapshot) == {"severe_symptom"}


def test_slow_breathing_is_respiratory_depression_and_not_anaphylaxis() -> None:
    snapshot = Snapshot(new_check_ins=[check_in(slow_breathing=True)])
    assert rule_ids(snapshot) == {"respiratory_depression"}
    assert the_finding(snapshot, "respiratory_depression").reason == "Reported slow or shallow breathing."
    # Anaphylaxis is face swelling or trouble breathing or swallowing, and nothing else.
    for answers in ({"face_swelling": True}, {"breathing_trouble": True}):
        assert rule_ids(Snapshot(new_check_ins=[check_in(**answers)])) == {"anaphylaxis"}


# ---- dress ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "fires"), [(0, True), (3, True), (-3, True), (4, False), (-4, False)])
def test_dress_is_urgent_for_a_new_fever_with_a_rash_within_3_days(gap: int, fires: bool) -> None:
    fever, partner = check_in(0, fever=True), rash(gap)
    snapshot = Snapshot(new_check_ins=[fever], nearby_symptoms=[partner])
    assert ("dress" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "dress")
        assert finding.severity == URGENT
        assert finding.evidence == (Ref("check_in", fever.id), Ref("symptom", partner.id))


@pytest.mark.parametrize(("gap", "fires"), [(3, True), (-3, True), (4, False), (-4, False)])
def test_dress_is_urgent_for_a_new_rash_with_an_earlier_or_later_fever(gap: int, fires: bool) -> None:
    fever, partner = check_in(gap, fever=True), rash(0)
    snapshot = Snapshot(new_symptoms=[partner], nearby_check_ins=[fever])
    assert ("dress" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "dress")
        assert finding.severity == URGENT
        assert finding.evidence == (Ref("check_in", fever.id), Ref("symptom", partner.id))
        assert "skin_reaction" not in rule_ids(snapshot)  # the dress flag says more
    else:
        assert rule_ids(snapshot) == {"skin_reaction"}


def test_dress_is_urgent_for_a_fever_and_a_rash_in_one_check_in() -> None:
    fever = check_in(0, fever=True)
    its_rash = replace(rash(0), check_in_id=fever.id)
    snapshot = Snapshot(new_check_ins=[fever], new_symptoms=[its_rash])
    assert rule_ids(snapshot) == {"dress"}
    finding = the_finding(snapshot, "dress")
    assert finding.severity == URGENT and finding.evidence == (
        Ref("check_in", fever.id),
        Ref("symptom", its_rash.id),
    )


def test_fever_and_swollen_glands_in_one_check_in_without_a_rash_are_high() -> None:
    entry = check_in(0, fever=True, swollen_glands=True)
    finding = the_finding(Snapshot(new_check_ins=[entry]), "dress")
    assert finding.severity == HIGH and finding.evidence == refs("check_in", entry)
    assert "without a rash" in finding.reason


@pytest.mark.parametrize(("gap", "fires"), [(3, True), (-3, True), (4, False), (-4, False)])
def test_dress_is_high_for_swollen_glands_with_a_fever_in_another_check_in(gap: int, fires: bool) -> None:
    glands, fever = check_in(0, swollen_glands=True), check_in(gap, fever=True)
    snapshot = Snapshot(new_check_ins=[fever], nearby_check_ins=[glands])
    assert ("dress" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "dress")
        assert finding.severity == HIGH and finding.evidence == refs("check_in", fever, glands)


@pytest.mark.parametrize(("rash_gap", "severity"), [(3, URGENT), (-3, URGENT), (4, HIGH), (-4, HIGH)])
def test_fever_and_glands_with_a_rash_within_3_days_are_urgent_and_high_only_without(
    rash_gap: int, severity: Severity
) -> None:
    entry, partner = check_in(0, fever=True, swollen_glands=True), rash(rash_gap)
    finding = the_finding(Snapshot(new_check_ins=[entry], nearby_symptoms=[partner]), "dress")
    assert finding.severity == severity
    if severity == URGENT:
        assert finding.evidence == (Ref("check_in", entry.id), Ref("symptom", partner.id))
    else:
        assert finding.evidence == refs("check_in", entry)


def test_new_swollen_glands_near_a_fever_already_paired_with_a_rash_is_not_high() -> None:
    """The rash is near the fever, though more than 3 days from the glands: the fever is not "without
    a rash", and that urgent pair was flagged when it was made."""
    fever, old_rash, glands = check_in(-3, fever=True), rash(-5), check_in(0, swollen_glands=True)
    assert (
        rule_ids(Snapshot(new_check_ins=[glands], nearby_check_ins=[fever], nearby_symptoms=[old_rash]))
        == set()
    )
    far_rash = rash(-7)  # 4 days from the fever: no longer its rash
    finding = the_finding(
        Snapshot(new_check_ins=[glands], nearby_check_ins=[fever], nearby_symptoms=[far_rash]), "dress"
    )
    assert finding.severity == HIGH and finding.evidence == refs("check_in", fever, glands)


def test_a_rash_answered_no_is_not_a_dress_partner() -> None:
    snapshot = Snapshot(new_check_ins=[check_in(0, fever=True)], nearby_symptoms=[rash(1, present=0)])
    assert evaluate(snapshot) == []
    glands = check_in(0, fever=True, swollen_glands=True)
    finding = the_finding(Snapshot(new_check_ins=[glands], nearby_symptoms=[rash(1, present=0)]), "dress")
    assert finding.severity == HIGH


def test_hives_are_no_dress_partner() -> None:
    fever, hives = check_in(0, fever=True), symptom("hives", 0, present=1)
    assert rule_ids(Snapshot(new_check_ins=[fever], new_symptoms=[hives])) == {"skin_reaction"}


def test_an_old_dress_pair_is_not_flagged_again_by_an_entry_that_takes_no_part() -> None:
    old_pair = [check_in(-2, fever=True), check_in(-1, swollen_glands=True)]
    for unrelated in (check_in(0), check_in(0, fall=True), check_in(0, self_harm_thoughts=0)):
        assert "dress" not in rule_ids(Snapshot(new_check_ins=[unrelated], nearby_check_ins=old_pair))
    # A rash reported more than 3 days from every fever takes no part either: a skin reaction only.
    far_rash = rash(2)
    assert rule_ids(Snapshot(new_symptoms=[far_rash], nearby_check_ins=old_pair)) == {"skin_reaction"}
    # A new rash close to the old fever does take part: urgent now (the high flag escalates).
    near_rash = rash(0)
    finding = the_finding(Snapshot(new_symptoms=[near_rash], nearby_check_ins=old_pair), "dress")
    assert finding.severity == URGENT
    assert finding.evidence == (Ref("check_in", old_pair[0].id), Ref("symptom", near_rash.id))
    # An old fever with an old rash: a new glands answer near them raises nothing more.
    old_urgent = Snapshot(
        new_check_ins=[check_in(0, swollen_glands=True)],
        nearby_check_ins=[old_pair[0]],
        nearby_symptoms=[rash(-1)],
    )
    assert evaluate(old_urgent) == []


# ---- skin_reaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "present", "fires"),
    [("rash", 0, False), ("rash", 1, True), ("hives", 0, False), ("hives", 1, True)],
)
def test_a_rash_or_hives_present_is_a_skin_reaction(term: str, present: int, fires: bool) -> None:
    report = symptom(term, present=present)
    snapshot = Snapshot(new_symptoms=[report])
    assert rule_ids(snapshot) == ({"skin_reaction"} if fires else set())
    if fires:
        finding = the_finding(snapshot, "skin_reaction")
        assert finding.evidence == refs("symptom", report) and finding.symptom_code == term


def test_hives_in_a_check_in_with_face_swelling_are_anaphylaxis_only() -> None:
    entry = check_in(0, face_swelling=True)
    hives = replace(symptom("hives", present=1), check_in_id=entry.id)
    assert rule_ids(Snapshot(new_check_ins=[entry], new_symptoms=[hives])) == {"anaphylaxis"}
    # The same hives reported apart from that check-in are an entry of their own.
    apart = symptom("hives", present=1)
    assert rule_ids(Snapshot(new_check_ins=[entry], new_symptoms=[apart])) == {"anaphylaxis", "skin_reaction"}


def test_a_rash_in_a_check_in_with_trouble_breathing_is_anaphylaxis_only() -> None:
    entry = check_in(0, breathing_trouble=True)
    its_rash = replace(rash(0), check_in_id=entry.id)
    assert rule_ids(Snapshot(new_check_ins=[entry], new_symptoms=[its_rash])) == {"anaphylaxis"}


def test_rash_and_hives_in_one_check_in_are_a_skin_reaction_each() -> None:
    entry = check_in(0)
    reports = [
        replace(rash(0), check_in_id=entry.id),
        replace(symptom("hives", present=1), check_in_id=entry.id),
    ]
    findings = [
        f
        for f in evaluate(Snapshot(new_check_ins=[entry], new_symptoms=reports))
        if f.rule == "skin_reaction"
    ]
    assert [(f.symptom_code, f.evidence) for f in findings] == [
        ("rash", refs("symptom", reports[0])),
        ("hives", refs("symptom", reports[1])),
    ]
    assert all(f.severity == HIGH for f in findings)


# ---- severe_symptom ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "grade", "severity", "fires"),
    [
        ("dizziness", 3, 2, True),  # composite grade 3 (S then I: S=2, I=4)
        ("dizziness", 1, 3, True),  # severity 3 with a lower grade (S=3, I=0)
        ("dizziness", 2, 4, True),  # severity 4
        ("dizziness", 2, 2, False),
        ("diarrhea", 3, None, True),  # a frequency-only term reaches grade 3 without a severity
        ("diarrhea", 2, None, False),
        ("rash", None, None, False),  # presence-only: no grade, no severity
    ],
)
def test_severe_symptom(code: str, grade: int | None, severity: int | None, fires: bool) -> None:
    previous = symptom(code, -1, grade=grade, severity=severity)  # same grade the day before: no worsening
    report = symptom(code, 0, grade=grade, severity=severity)
    snapshot = Snapshot(new_symptoms=[report], earlier_symptoms=[previous])
    assert ("severe_symptom" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "severe_symptom")
        assert finding.evidence == refs("symptom", report) and finding.symptom_code == code


# ---- worsening_symptom ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous_grade", "new_grade", "fires"),
    [(1, 2, False), (1, 3, True), (0, 2, True), (0, 1, False), (2, 3, False), (3, 1, False)],
)
def test_worsening_symptom_is_a_rise_of_2_against_the_previous_report(
    previous_grade: int, new_grade: int, fires: bool
) -> None:
    previous = symptom("fatigue", -3, grade=previous_grade, severity=1)
    report = symptom("fatigue", 0, grade=new_grade, severity=1)
    snapshot = Snapshot(new_symptoms=[report], earlier_symptoms=[previous])
    assert ("worsening_symptom" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "worsening_symptom")
        assert finding.evidence == refs("symptom", report, previous)
        assert finding.symptom_code == "fatigue"


@pytest.mark.parametrize("new_grade", [1, 2, 3])
def test_a_first_report_compares_with_nothing(new_grade: int) -> None:
    """CLINICAL.md 4 (revised): a first report is no rise "from 0"; severe_symptom and persistent_symptom
    cover it. (The first revision counted a first grade-2 report as worsening: 139 high flags a month.)"""
    report = symptom("memory", grade=new_grade, severity=1)
    other_term = symptom("fatigue", -1, grade=0, severity=0)  # another term is no previous report
    snapshot = Snapshot(new_symptoms=[report], earlier_symptoms=[other_term])
    assert "worsening_symptom" not in rule_ids(snapshot)
    assert rule_ids(snapshot) == ({"severe_symptom"} if new_grade == 3 else set())


@pytest.mark.parametrize(
    ("before", "fires"),
    [
        (timedelta(days=14), True),  # still within 14 days: 0 -> 2
        (timedelta(days=14, seconds=1), False),  # outside: a first report, compared with nothing
    ],
)
def test_worsening_symptom_needs_a_previous_report_within_14_days(before: timedelta, fires: bool) -> None:
    report = symptom("nausea", grade=2, severity=2)
    at = report.reported_at - before
    previous = replace(symptom("nausea", grade=0, severity=0), reported_at=at, local_date=at.date())
    snapshot = Snapshot(new_symptoms=[report], earlier_symptoms=[previous])
    assert ("worsening_symptom" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "worsening_symptom")
        assert finding.evidence == refs("symptom", report, previous)
        assert finding.reason == "Nausea rose from grade 0 to 2 since the previous report."


def test_worsening_symptom_compares_with_the_latest_previous_report() -> None:
    low_then_high = [symptom("fatigue", -5, grade=0, severity=0), symptom("fatigue", -1, grade=2, severity=2)]
    report = symptom("fatigue", grade=3, severity=2)
    assert "worsening_symptom" not in rule_ids(
        Snapshot(new_symptoms=[report], earlier_symptoms=low_then_high)
    )
    high_then_low = [symptom("fatigue", -5, grade=2, severity=2), symptom("fatigue", -1, grade=1, severity=1)]
    finding = the_finding(
        Snapshot(new_symptoms=[report], earlier_symptoms=high_then_low), "worsening_symptom"
    )
    assert finding.evidence == refs("symptom", report, high_then_low[1])


def test_worsening_symptom_within_one_batch_uses_the_earlier_new_report() -> None:
    morning = symptom("dizziness", grade=1, severity=1, hour=8)
    evening = symptom("dizziness", grade=3, severity=2, hour=20)
    findings = [
        f for f in evaluate(Snapshot(new_symptoms=[morning, evening])) if f.rule == "worsening_symptom"
    ]
    assert [f.evidence for f in findings] == [refs("symptom", evening, morning)]


def test_a_later_report_is_not_the_previous_one() -> None:
    later = symptom("fatigue", 1, grade=3, severity=2)
    report = symptom("fatigue", 0, grade=2, severity=2)
    # Only a later report: this one is the first, compared with nothing.
    assert "worsening_symptom" not in rule_ids(Snapshot(new_symptoms=[report], earlier_symptoms=[later]))
    earlier = symptom("fatigue", -2, grade=0, severity=0)
    finding = the_finding(
        Snapshot(new_symptoms=[report], earlier_symptoms=[later, earlier]), "worsening_symptom"
    )
    assert finding.evidence == refs("symptom", report, earlier)


def test_presence_only_terms_never_worsen() -> None:
    for term in ("rash", "hives"):
        snapshot = Snapshot(
            new_symptoms=[symptom(term, present=1)], earlier_symptoms=[symptom(term, -1, present=0)]
        )
        assert rule_ids(snapshot) == {"skin_reaction"}  # present now: a skin reaction, no worsening


# ---- anxiety_severe and anxiety_worsening -----------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "total", "expected"),
    [
        # A patient's first GAD-7 never flags, however high: the prescriber knows it.
        (None, 14, set()),
        (None, 15, set()),
        (None, 21, set()),
        # Crossing into severe: a total >= 15 when the previous one was < 15.
        (14, 14, set()),
        (14, 15, {"anxiety_severe"}),
        (13, 15, {"anxiety_severe"}),  # +2, severe for the first time
        (15, 15, set()),  # already severe: no new crossing
        (16, 20, {"anxiety_worsening"}),  # +4 within the severe band: routine only
        (21, 15, set()),  # a fall that is still severe (the first revision flagged it)
        # Rises against the previous GAD-7: 4 (MCID) routine, 6 (RCI) high.
        (2, 5, set()),  # +3
        (2, 6, {"anxiety_worsening"}),  # +4
        (2, 7, {"anxiety_worsening"}),  # +5
        (2, 8, {"anxiety_severe"}),  # +6: anxiety_severe's, not anxiety_worsening's
        (15, 21, {"anxiety_severe"}),  # +6 within the severe band
        (0, 14, {"anxiety_severe"}),  # +14
        (11, 15, {"anxiety_severe", "anxiety_worsening"}),  # crossing and +4
        (14, 8, set()),  # a fall of 6 is no rise
    ],
)
def test_gad7_rules_against_the_previous_one(previous: int | None, total: int, expected: set[str]) -> None:
    new = gad7(total)
    before = gad7(previous, -14) if previous is not None else None
    snapshot = Snapshot(new_gad7=[new], previous_gad7={new.id: before} if before else {})
    assert rule_ids(snapshot) == expected
    for rule in expected:
        finding = the_finding(snapshot, rule)
        assert finding.evidence == refs("anxiety", new, before)


def test_each_new_gad7_is_compared_with_its_own_previous_one() -> None:
    new, other = gad7(10), gad7(12)
    snapshot = Snapshot(new_gad7=[new, other], previous_gad7={other.id: gad7(2, -14)})
    findings = evaluate(snapshot)
    assert [(f.rule, f.evidence[0]) for f in findings] == [("anxiety_severe", Ref("anxiety", other.id))]


@pytest.mark.parametrize(
    ("baseline", "previous", "total", "expected"),
    [
        (5, 9, 10, set()),  # +5 from the baseline, +1 from the previous one
        (5, 9, 11, {"anxiety_severe"}),  # +6 from the baseline (RCI), +2 from the previous one
        (5, 5, 11, {"anxiety_severe"}),  # the baseline is the previous one too
        (5, 7, 11, {"anxiety_severe", "anxiety_worsening"}),  # +6 from the baseline, +4 from the previous
        (12, 4, 10, {"anxiety_severe"}),  # +6 from the previous one, below the baseline
    ],
)
def test_anxiety_severe_on_a_reliable_rise_from_the_treatment_baseline(
    baseline: int, previous: int, total: int, expected: set[str]
) -> None:
    start, before, new = gad7(baseline, -28), gad7(previous, -14), gad7(total)
    if baseline == previous:
        before = start
    snapshot = Snapshot(new_gad7=[new], previous_gad7={new.id: before}, treatment_baseline=start)
    assert rule_ids(snapshot) == expected
    if "anxiety_severe" in expected:
        finding = the_finding(snapshot, "anxiety_severe")
        from_baseline = total - baseline >= 6 and start is not before  # the previous one said it already
        from_previous = total - previous >= 6 or previous < 15 <= total
        expected_refs = [Ref("anxiety", new.id)]
        if from_previous:
            expected_refs.append(Ref("anxiety", before.id))
        if from_baseline:
            expected_refs.append(Ref("anxiety", start.id))
        assert finding.evidence == tuple(dict.fromkeys(expected_refs))
        if from_baseline:
            assert f"since the start of treatment ({baseline} to {total})" in finding.reason


@pytest.mark.parametrize(("previous", "total"), [(2, 8), (2, 21), (10, 15), (0, 14)])
def test_the_treatment_baseline_itself_never_raises_anxiety_severe(previous: int, total: int) -> None:
    """The first GAD-7 on or after the first regimen's start, even after a lower one before treatment."""
    before, baseline = gad7(previous, -14), gad7(total)
    snapshot = Snapshot(new_gad7=[baseline], previous_gad7={baseline.id: before}, treatment_baseline=baseline)
    assert "anxiety_severe" not in rule_ids(snapshot)


def test_anxiety_worsening_on_the_baseline_follows_its_own_row() -> None:
    """CLINICAL.md 4 exempts the baseline in anxiety_severe's row; anxiety_worsening's row ("rose by >= 4
    (and < 6) against the previous GAD-7") has no exemption, so a rise of 4 before treatment starts is
    still a routine flag."""
    before, baseline = gad7(2, -14), gad7(6)
    snapshot = Snapshot(new_gad7=[baseline], previous_gad7={baseline.id: before}, treatment_baseline=baseline)
    assert rule_ids(snapshot) == {"anxiety_worsening"}


def test_a_gad7_before_the_treatment_baseline_is_not_compared_with_it() -> None:
    """A GAD-7 from before treatment that syncs late is compared with its previous one only."""
    baseline, before, late = gad7(2, 7), gad7(6, -14), gad7(9)
    snapshot = Snapshot(new_gad7=[late], previous_gad7={late.id: before}, treatment_baseline=baseline)
    assert rule_ids(snapshot) == set()  # +7 "from" a baseline recorded after it: no rise


# ---- dose_above_max ---------------------------------------------------------------------------------


def _doses_on_one_day(
    totals: list[float], clearance: float | None = None, regimen_max: float | None = None
) -> tuple[Snapshot, list[DoseObs]]:
    """Doses of one day; the last is the new one, the others were taken earlier that day."""
    doses = [dose(mg) for mg in totals]
    snapshot = Snapshot(
        creatinine_clearance_ml_min=clearance,
        new_doses=doses[-1:],
        doses_on_days={day(0): doses},
        # A regimen without an override, its maximum as given (None: no regimen, or no maximum).
        prescribed_on_days={day(0): Prescribed(600.0, regimen_max) if regimen_max is not None else None},
    )
    return snapshot, doses


@pytest.mark.parametrize(
    ("clearance", "limit"),
    [
        (None, 3600),
        (120, 3600),
        (60, 3600),
        (59, 1400),
        (30, 1400),
        (29, 700),
        (15, 700),
        (14, 300),
        (0, 300),
    ],
)
@pytest.mark.parametrize("above", [0, 1])
def test_dose_above_the_label_maximum_for_kidney_function(
    clearance: float | None, limit: int, above: int
) -> None:
    snapshot, doses = _doses_on_one_day([limit / 2, limit / 2 + above], clearance)
    if not above:  # exactly the limit is allowed
        assert evaluate(snapshot) == []
        return
    assert rule_ids(snapshot) == {"dose_above_max"}
    assert the_finding(snapshot, "dose_above_max").evidence == refs("dose", *doses)


@pytest.mark.parametrize(
    ("clearance", "regimen_max", "total", "fires"),
    [
        (None, 900, 900, False),
        (None, 900, 901, True),
        (None, 4800, 3600, False),  # a regimen above the label maximum does not lift it
        (None, 4800, 3601, True),
        (45, 1800, 1401, True),  # nor above the kidney-function maximum
        (45, 1200, 1201, True),
        (45, 1200, 1200, False),
    ],
)
def test_dose_above_the_prescribed_maximum(
    clearance: float | None, regimen_max: float, total: float, fires: bool
) -> None:
    snapshot, doses = _doses_on_one_day([300, total - 300], clearance, regimen_max)
    assert ("dose_above_max" in rule_ids(snapshot)) is fires
    if fires:
        assert the_finding(snapshot, "dose_above_max").evidence == refs("dose", *doses)


def test_dose_above_max_adds_up_each_local_day_apart() -> None:
    monday, tuesday = [dose(1800, 0), dose(1800, 0)], [dose(2000, 1), dose(1700, 1)]
    snapshot = Snapshot(new_doses=[monday[-1], tuesday[-1]], doses_on_days={day(0): monday, day(1): tuesday})
    assert [f.evidence for f in evaluate(snapshot)] == [refs("dose", *tuesday)]


# ---- dose_above_max under a regimen written with override_reason -------------------------------------


def _under(prescribed: Prescribed | None, totals: list[float], clearance: float | None = None) -> Snapshot:
    doses = [dose(mg) for mg in totals]
    return Snapshot(
        creatinine_clearance_ml_min=clearance,
        new_doses=doses[-1:],
        doses_on_days={day(0): doses},
        prescribed_on_days={day(0): prescribed},
    )


@pytest.mark.parametrize(
    ("clearance", "prescribed", "total", "fires"),
    [
        # 900 mg a day prescribed above the 700 mg of a clearance of 20 mL/min, with a reason: the patient
        # following it is not flagged; the regimen's own total (no max_daily_mg) is the limit instead.
        (20, Prescribed(900.0, None, override=True), 900, False),
        (20, Prescribed(900.0, None, override=True), 901, True),
        # Its max_daily_mg, when it has one, in place of the label maximum overridden.
        (20, Prescribed(900.0, 1000.0, override=True), 1000, False),
        (20, Prescribed(900.0, 1000.0, override=True), 1001, True),
        # Without the override the label maximum stands (such a regimen can't be written: legacy data).
        (20, Prescribed(900.0, None), 701, True),
        (20, Prescribed(900.0, None), 700, False),
        # Above 3600 mg with a reason: 4800 prescribed, 4800 taken.
        (None, Prescribed(4800.0, None, override=True), 4800, False),
        (None, Prescribed(4800.0, None, override=True), 4801, True),
        # A label maximum the schedule stays within was not overridden: 1200 prescribed with a reason at
        # 20 mL/min (700) and a max of 4000 still meets the label's 3600.
        (20, Prescribed(1200.0, 4000.0, override=True), 3600, False),
        (20, Prescribed(1200.0, 4000.0, override=True), 3601, True),
    ],
)
def test_dose_above_max_under_an_override_reads_the_regimen_s_own_limit(
    clearance: float | None, prescribed: Prescribed, total: float, fires: bool
) -> None:
    snapshot = _under(prescribed, [300, total - 300], clearance)
    assert ("dose_above_max" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "dose_above_max")
        assert "mg" in finding.reason and "take" not in finding.reason.lower().replace("taken", "")


def test_the_override_s_limit_is_named_in_the_reason() -> None:
    reason = the_finding(_under(Prescribed(900.0, None, override=True), [901], 20), "dose_above_max").reason
    assert "the prescribed daily total of 900 mg" in reason and "700" not in reason
    limits = daily_limits(20, Prescribed(900.0, 1000.0, override=True))
    assert sorted(limit for limit, _ in limits) == [1000, 3600]


# ---- above_prescribed -------------------------------------------------------------------------------


def _week(totals: dict[int, float], new_on: int = 0, prescribed: float = 600.0) -> Snapshot:
    """One dose a day on the given day offsets, against `prescribed` mg a day; the dose of `new_on` new."""
    doses = {day(offset): [dose(mg, offset)] for offset, mg in totals.items()}
    around = [day(new_on + n) for n in range(-6, 7)]
    return Snapshot(
        new_doses=doses[day(new_on)],
        doses_on_days={on: doses.get(on, []) for on in around},
        prescribed_on_days={on: Prescribed(prescribed) for on in around},
        above_prescribed=ABOVE_PRESCRIBED,
    )


def test_above_prescribed_s_product_defaults_are_clinical_md_s() -> None:
    assert (ABOVE_PRESCRIBED.percent, ABOVE_PRESCRIBED.min_days, ABOVE_PRESCRIBED.window_days) == (50, 2, 7)


@pytest.mark.parametrize(
    ("earlier", "today", "fires"),
    [
        (900, 900, True),  # 50% above 600 on both days
        (894, 900, False),  # 49% on the earlier day: one day counts
        (900, 894, False),  # 49% on the new day
        (1200, 1200, True),
    ],
)
def test_above_prescribed_at_50_percent_on_2_days(earlier: float, today: float, fires: bool) -> None:
    snapshot = _week({-3: earlier, 0: today})
    assert ("above_prescribed" in rule_ids(snapshot)) is fires


def test_above_prescribed_reason_and_evidence() -> None:
    snapshot = _week({-2: 900, -1: 600, 0: 950})
    finding = the_finding(snapshot, "above_prescribed")
    assert finding.reason == (
        f"Took 900 mg on {day(-2).isoformat()} and 950 mg on {day(0).isoformat()}, "
        "50% or more above the prescribed 600 mg a day."
    )
    assert finding.evidence == (
        *refs("dose", *snapshot.doses_on_days[day(-2)]),
        *refs("dose", *snapshot.doses_on_days[day(0)]),
    )


@pytest.mark.parametrize(("offset", "fires"), [(-6, True), (-7, False)])
def test_above_prescribed_counts_the_last_7_local_days_only(offset: int, fires: bool) -> None:
    """The 7th day back (day -6) is in the window; the 8th (day -7) is not."""
    assert ("above_prescribed" in rule_ids(_week({offset: 900, 0: 900}))) is fires


def test_one_day_of_seven_is_not_above_prescribed() -> None:
    assert "above_prescribed" not in rule_ids(_week({0: 3000}))
    assert "above_prescribed" not in rule_ids(_week({-1: 600, -2: 650, 0: 3000}))


def test_a_late_dose_completes_a_window_with_later_days() -> None:
    """A phone syncs days late: a dose on day -2 with day 3 above already: both in one 7-day window."""
    assert "above_prescribed" in rule_ids(_week({-2: 900, 3: 900}, new_on=-2))
    assert "above_prescribed" not in rule_ids(_week({-2: 900, 5: 900}, new_on=-2))


def test_above_prescribed_needs_a_regimen_and_the_new_day_above() -> None:
    snapshot = _week({-3: 900, 0: 900})
    no_regimen = replace(snapshot, prescribed_on_days={})
    assert above_prescribed(no_regimen) == []
    old_days_only = _week({-3: 900, -1: 900, 0: 600})
    assert above_prescribed(old_days_only) == []  # the new dose's day isn't above: flagged already


def test_above_prescribed_compares_each_day_with_its_own_regimen() -> None:
    snapshot = _week({-3: 900, 0: 900})
    snapshot.prescribed_on_days[day(-3)] = Prescribed(900.0)  # the earlier regimen prescribed 900
    assert above_prescribed(snapshot) == []
    snapshot.prescribed_on_days[day(-3)] = Prescribed(500.0)
    (finding,) = above_prescribed(snapshot)
    assert "the daily total prescribed on each of those days" in finding.reason


# ---- persistent_symptom -----------------------------------------------------------------------------


def _nausea_on(days_and_grades: list[tuple[int, int]]) -> tuple[Snapshot, list[SymptomObs]]:
    """Reports of nausea, the last one new; grades and severities that cross no other threshold."""
    reports = [
        symptom("nausea", d, grade=g, severity=min(g, 2), hour=8 + i)
        for i, (d, g) in enumerate(days_and_grades)
    ]
    return Snapshot(new_symptoms=reports[-1:], earlier_symptoms=reports[:-1]), reports


@pytest.mark.parametrize(
    ("days_and_grades", "fires"),
    [
        ([(-1, 2), (0, 2)], False),  # 2 days
        ([(-2, 2), (-1, 2), (0, 2)], True),  # 3 days
        ([(-6, 2), (-3, 3), (0, 2)], True),  # the 7-day window is today and the 6 days before
        ([(-7, 2), (-3, 2), (0, 2)], False),  # a day outside the window does not count
        ([(-2, 1), (-1, 2), (0, 2)], False),  # grade 1 days don't count
        ([(-1, 2), (0, 2), (0, 2)], False),  # two reports on one day are one day
        ([(-2, 2), (-1, 2), (0, 1)], False),  # a grade 1 report raises nothing itself
    ],
)
def test_persistent_symptom_on_3_of_the_last_7_days(
    days_and_grades: list[tuple[int, int]], fires: bool
) -> None:
    snapshot, reports = _nausea_on(days_and_grades)
    assert ("persistent_symptom" in rule_ids(snapshot)) is fires
    if fires:
        finding = the_finding(snapshot, "persistent_symptom")
        assert finding.symptom_code == "nausea"
        assert finding.evidence == refs("symptom", *[r for r in reports if r.local_date >= day(-6)])


def test_persistent_symptom_counts_each_term_apart() -> None:
    earlier = [symptom("fatigue", -2, grade=2, severity=2), symptom("nausea", -1, grade=2, severity=2)]
    snapshot = Snapshot(new_symptoms=[symptom("nausea", 0, grade=2, severity=2)], earlier_symptoms=earlier)
    assert "persistent_symptom" not in rule_ids(snapshot)


def test_persistent_symptom_uses_the_settings_it_is_given() -> None:
    snapshot, _ = _nausea_on([(-2, 2), (-1, 2), (0, 2)])
    assert persistent_symptom_rule(3, 7, 3)(snapshot) == []  # min grade 3
    assert persistent_symptom_rule(4, 7, 2)(snapshot) == []  # 4 days
    assert persistent_symptom_rule(3, 2, 2)(snapshot) == []  # a 2-day window
    assert len(persistent_symptom_rule(2, 2, 2)(snapshot)) == 1


def test_a_late_report_that_completes_3_of_7_days_raises_persistent_symptom() -> None:
    earlier = [symptom("nausea", 0, grade=2, severity=2), symptom("nausea", 2, grade=2, severity=2)]
    snapshot = Snapshot(new_symptoms=[symptom("nausea", 1, grade=2, severity=2)], earlier_symptoms=earlier)
    assert "persistent_symptom" in rule_ids(snapshot)


# ---- label_max_daily_mg -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clearance", "label_max"),
    [
        (None, 3600),  # unknown
        (250, 3600),
        (60, 3600),
        (59.5, 1400),  # below 60 is not ">= 60": the next band down
        (59, 1400),
        (30, 1400),
        (29.9, 700),
        (29, 700),
        (15, 700),
        (14.9, 300),
        (14, 300),
        (0, 300),
    ],
)
def test_label_max_daily_mg_follows_clinical_md_s_table(clearance: float | None, label_max: int) -> None:
    assert label_max_daily_mg(clearance) == label_max


@given(st.floats(0, 300), st.floats(0, 300))
@settings(max_examples=150, deadline=None)
def test_label_max_never_falls_as_kidney_function_improves(low: float, high: float) -> None:
    low, high = sorted((low, high))
    assert label_max_daily_mg(low) <= label_max_daily_mg(high) <= label_max_daily_mg(None)
    assert label_max_daily_mg(low) in {300, 700, 1400, 3600}


# ---- properties over many snapshots ----------------------------------------------------------------


def _answers(packed: int, self_harm: int | None) -> dict[str, bool | int]:
    """Two bits per yes/no question: 0 absent, 1 no, 2 or 3 yes (one draw instead of eight)."""
    answers: dict[str, bool | int] = {}
    for n, question in enumerate(YES_NO_QUESTIONS):
        value = (packed >> 2 * n) & 3
        if value:
            answers[question] = value >= 2
    if self_harm is not None:
        answers["self_harm_thoughts"] = self_harm
    return answers


# Strategies are built once: building them inside the composite costs more than the rules themselves.
ANSWERS = st.builds(_answers, st.integers(0, 4 ** len(YES_NO_QUESTIONS) - 1), st.none() | st.integers(0, 3))
# (code, grade, severity, present) as each kind of term reports them.
SYMPTOM_SHAPES = st.one_of(
    st.tuples(st.sampled_from(("rash", "hives")), st.none(), st.none(), st.integers(0, 1)),
    st.tuples(st.just("diarrhea"), st.integers(0, 3), st.none(), st.none()),
    st.tuples(
        st.sampled_from(("drowsiness", "shortness_of_breath", "fatigue", "nausea")),
        st.integers(0, 3),
        st.integers(0, 4),
        st.none(),
    ),
)
NEAR, AROUND, PAST = st.integers(-3, 3), st.integers(-6, 6), st.integers(-16, 0)
HOURS = st.integers(0, 23)
MILLIGRAMS = st.integers(1, 24).map(lambda n: n * 100.0)
REGIMEN_MAX = st.none() | st.integers(3, 48).map(lambda n: n * 100.0)
PRESCRIBED = st.none() | st.builds(
    Prescribed, st.integers(1, 48).map(lambda n: n * 100.0), REGIMEN_MAX, st.booleans()
)
CLEARANCE = st.none() | st.floats(0, 200)
BIRTH_YEAR = st.none() | st.integers(1930, 2008)
TOTALS, EARLIER = st.integers(0, 21), st.integers(-30, -4)


def _check_ins(offsets: st.SearchStrategy[int], min_size: int, max_size: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.tuples(offsets, ANSWERS), min_size=min_size, max_size=max_size)


def _symptoms(offsets: st.SearchStrategy[int], max_size: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.tuples(offsets, HOURS, SYMPTOM_SHAPES), max_size=max_size)


@st.composite
def snapshots(draw: st.DrawFn, min_check_ins: int = 0) -> Snapshot:
    """Snapshots as the loader could build them: new entries, history around them, the patient's facts.
    Ids are numbered, so no two entries ever share one."""
    ids = itertools.count(1)

    def next_id() -> uuid.UUID:
        return uuid.UUID(int=next(ids))

    def check_ins(drawn: list[tuple[int, dict[str, bool | int]]]) -> list[CheckInObs]:
        return [CheckInObs(next_id(), day(offset), answers) for offset, answers in drawn]

    def symptoms(
        drawn: list[tuple[int, int, tuple[str, int | None, int | None, int | None]]],
    ) -> list[SymptomObs]:
        return [
            SymptomObs(next_id(), code, day(offset), moment(offset, hour), grade, severity, present)
            for offset, hour, (code, grade, severity, present) in drawn
        ]

    new_gad7 = [
        Gad7Obs(next_id(), moment(o), t) for o, t in draw(st.lists(st.tuples(NEAR, TOTALS), max_size=2))
    ]
    previous_gad7 = {
        g.id: Gad7Obs(next_id(), moment(draw(EARLIER)), draw(TOTALS)) for g in new_gad7 if draw(st.booleans())
    }
    # The treatment baseline: none, an older GAD-7, one of the previous ones, or one of the new ones.
    baseline_choices: list[Gad7Obs | None] = [None, Gad7Obs(next_id(), moment(-40), draw(TOTALS))]
    baseline_choices += [*previous_gad7.values(), *new_gad7]
    treatment_baseline = draw(st.sampled_from(baseline_choices))
    doses_on_days: dict[date, list[DoseObs]] = {}
    new_doses = []
    for offset, mg, earlier in draw(
        st.lists(st.tuples(st.integers(0, 1), MILLIGRAMS, st.lists(MILLIGRAMS, max_size=3)), max_size=2)
    ):
        new_doses.append(DoseObs(next_id(), day(offset), mg))
        doses_on_days.setdefault(day(offset), []).extend(
            [new_doses[-1], *(DoseObs(next_id(), day(offset), e) for e in earlier)]
        )
    new_check_ins = check_ins(draw(_check_ins(NEAR, min_check_ins, 2)))
    new_symptoms = symptoms(draw(_symptoms(NEAR, 3)))
    # Some reports were made in one of the new check-ins (skin_reaction's "same entry").
    new_symptoms = [
        replace(s, check_in_id=draw(st.sampled_from(new_check_ins)).id)
        if new_check_ins and draw(st.booleans())
        else s
        for s in new_symptoms
    ]
    return Snapshot(
        takes_opioids_or_benzodiazepines=draw(st.booleans()),
        takes_other_cns_depressants=draw(st.booleans()),
        has_lung_disease=draw(st.booleans()),
        birth_year=draw(BIRTH_YEAR),
        creatinine_clearance_ml_min=draw(CLEARANCE),
        new_check_ins=new_check_ins,
        new_symptoms=new_symptoms,
        new_gad7=new_gad7,
        new_doses=new_doses,
        nearby_check_ins=check_ins(draw(_check_ins(AROUND, 0, 3))),
        nearby_symptoms=symptoms(draw(_symptoms(AROUND, 2))),
        earlier_symptoms=symptoms(draw(_symptoms(PAST, 6))),
        previous_gad7=previous_gad7,
        treatment_baseline=treatment_baseline,
        doses_on_days=doses_on_days,
        prescribed_on_days={d: draw(PRESCRIBED) for d in doses_on_days},
        above_prescribed=ABOVE_PRESCRIBED,
    )


def _new_ids(snapshot: Snapshot) -> set[uuid.UUID]:
    news: list[CheckInObs | SymptomObs | Gad7Obs | DoseObs] = [
        *snapshot.new_check_ins,
        *snapshot.new_symptoms,
        *snapshot.new_gad7,
        *snapshot.new_doses,
    ]
    return {entry.id for entry in news}


@given(snapshots())
@settings(max_examples=150, deadline=None)
def test_every_finding_is_a_clinical_rule_with_its_severity_and_new_evidence(snapshot: Snapshot) -> None:
    new_ids = _new_ids(snapshot)
    new_codes = {s.code for s in snapshot.new_symptoms}
    for finding in evaluate(snapshot):
        assert finding.severity in CLINICAL_RULES[finding.rule]
        assert finding.reason and finding.episode is None
        assert finding.evidence and len(set(finding.evidence)) == len(finding.evidence)
        assert {ref.type for ref in finding.evidence} <= {"check_in", "dose", "anxiety", "symptom"}
        # A flag answers to something just recorded: never to an old entry alone.
        assert new_ids & {ref.id for ref in finding.evidence}
        if finding.rule in PER_SYMPTOM:
            assert finding.symptom_code in new_codes
        else:
            assert finding.symptom_code is None


@given(snapshots(min_check_ins=1), st.data())
@settings(max_examples=100, deadline=None)
def test_one_more_yes_answer_never_removes_a_finding(snapshot: Snapshot, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(snapshot.new_check_ins) - 1))
    entry = snapshot.new_check_ins[index]
    unanswered = [q for q in (*YES_NO_QUESTIONS, "self_harm_thoughts") if not entry.yes(q)]
    assume(unanswered)
    question = data.draw(st.sampled_from(unanswered))
    answer = data.draw(st.integers(1, 3)) if question == "self_harm_thoughts" else True
    more = replace(entry, red_flags={**entry.red_flags, question: answer})
    check_ins = [*snapshot.new_check_ins[:index], more, *snapshot.new_check_ins[index + 1 :]]
    before, after = evaluate(snapshot), evaluate(replace(snapshot, new_check_ins=check_ins))
    after_rules = {f.rule for f in after}
    # A skin reaction may be taken up by a dress or anaphylaxis finding from the same entry instead.
    assert {f.rule for f in before} - {"skin_reaction"} <= after_rules
    if "skin_reaction" in {f.rule for f in before} - after_rules:
        assert after_rules & {"dress", "anaphylaxis"}
    # A more worrying answer never lowers a rule's severity (dress: high may become urgent).
    worst_after = {f.rule: f.severity.rank for f in sorted(after, key=lambda f: f.severity.rank)}
    assert all(worst_after[f.rule] >= f.severity.rank for f in before if f.rule in worst_after)
    # The findings of one check-in's own answers stay exactly; dress may pick another pair.
    own_rules = RED_FLAG_RULES - {"dress"}
    kept = {(f.rule, f.evidence) for f in after}
    assert all((f.rule, f.evidence) in kept for f in before if f.rule in own_rules)


@given(
    st.lists(st.integers(1, 36).map(lambda n: n * 100.0), min_size=1, max_size=5),
    st.integers(1, 12).map(lambda n: n * 100.0),
    st.none() | st.floats(0, 200),
    st.none() | st.integers(3, 48).map(lambda n: n * 100.0),
)
@settings(max_examples=200, deadline=None)
def test_dose_above_max_fires_above_the_lowest_limit_and_another_dose_never_removes_it(
    totals: list[float], extra: float, clearance: float | None, regimen_max: float | None
) -> None:
    snapshot, _ = _doses_on_one_day(totals, clearance, regimen_max)
    limit = min(3600, label_max_daily_mg(clearance), regimen_max if regimen_max is not None else 3600)
    assert bool(dose_above_max(snapshot)) is (sum(totals) > limit)
    more, _ = _doses_on_one_day([extra, *totals], clearance, regimen_max)
    assert len(dose_above_max(more)) >= len(dose_above_max(snapshot))


def _without_yes_answers(snapshot: Snapshot) -> Snapshot:
    def calm(entries: list[CheckInObs]) -> list[CheckInObs]:
        return [
            replace(c, red_flags={q: False for q in YES_NO_QUESTIONS} | {"self_harm_thoughts": 0})
            for c in entries
        ]

    return replace(
        snapshot,
        new_check_ins=calm(snapshot.new_check_ins),
        nearby_check_ins=calm(snapshot.nearby_check_ins),
    )


@given(snapshots())
@settings(max_examples=150, deadline=None)
def test_no_urgent_finding_without_a_red_flag_answer_in_a_patient_without_respiratory_risk(
    snapshot: Snapshot,
) -> None:
    """issue 23's target for a stable cohort: an urgent flag needs a yes answer, or respiratory risk."""
    calm = replace(
        _without_yes_answers(snapshot),
        takes_opioids_or_benzodiazepines=False,
        takes_other_cns_depressants=False,
        has_lung_disease=False,
        birth_year=None,
    )
    assert all(f.severity != URGENT for f in evaluate(calm))
    # With respiratory risk, only severe drowsiness or breathlessness is urgent without an answer.
    for finding in evaluate(_without_yes_answers(snapshot)):
        if finding.severity == URGENT:
            assert finding.rule == "respiratory_depression"
            [ref] = finding.evidence
            report = next(s for s in snapshot.new_symptoms if s.id == ref.id)
            assert report.code in ("drowsiness", "shortness_of_breath") and (report.severity or 0) >= 3
            assert snapshot.respiratory_risks(report.local_date)


@given(snapshots())
@settings(max_examples=150, deadline=None)
def test_gad7_properties(snapshot: Snapshot) -> None:
    findings = evaluate(snapshot)
    for gad7 in snapshot.new_gad7:
        mine = {f.rule for f in findings if f.evidence[0] == Ref("anxiety", gad7.id)}
        previous = snapshot.previous_gad7.get(gad7.id)
        if previous is None:  # a patient's first GAD-7 never flags
            assert mine == set()
            continue
        if snapshot.treatment_baseline is not None and snapshot.treatment_baseline.id == gad7.id:
            assert "anxiety_severe" not in mine  # nor does the treatment baseline
            continue
        rise = gad7.total - previous.total
        baseline = snapshot.treatment_baseline
        from_baseline = (
            baseline is not None
            and baseline.recorded_at < gad7.recorded_at
            and gad7.total - baseline.total >= 6
        )
        crossing = previous.total < 15 <= gad7.total
        assert ("anxiety_severe" in mine) is (rise >= 6 or crossing or from_baseline)
        assert ("anxiety_worsening" in mine) is (4 <= rise < 6)


@given(snapshots())
@settings(max_examples=150, deadline=None)
def test_worsening_needs_a_previous_report_of_the_term_within_14_days(snapshot: Snapshot) -> None:
    reports = {s.id: s for s in [*snapshot.earlier_symptoms, *snapshot.new_symptoms]}
    for finding in evaluate(snapshot):
        if finding.rule != "worsening_symptom":
            continue
        new, previous = (reports[ref.id] for ref in finding.evidence)
        assert new.code == previous.code == finding.symptom_code
        assert new.reported_at - timedelta(days=14) <= previous.reported_at < new.reported_at
        assert new.grade is not None and previous.grade is not None and new.grade - previous.grade >= 2
