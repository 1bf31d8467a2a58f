"""Every rule of CLINICAL.md section 4 (second revision), fired through the HTTP API, just inside and just
outside its threshold."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from models.flags import Severity
from services.clinical.rules import ADVICE
from tests.flag_helpers import at, check_in, day, dose_on, gad7_in_check_in, gad7_on, rules, symptom_on
from tests.world import World


async def _set_patient(client: httpx.AsyncClient, world: World, **fields: object) -> None:
    response = await client.patch(
        f"/v1/patients/{world['patient_a'].patient_id}", headers=world["provider_a"].headers, json=fields
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("answers", "rule", "severity"),
    [
        ({"face_swelling": True}, "anaphylaxis", "urgent"),
        ({"breathing_trouble": True}, "anaphylaxis", "urgent"),
        ({"hard_to_wake": True}, "respiratory_depression", "urgent"),
        ({"slow_breathing": True}, "respiratory_depression", "urgent"),  # no longer anaphylaxis
        ({"self_harm_thoughts": 1}, "suicidality", "urgent"),
        ({"self_harm_thoughts": 3}, "suicidality", "urgent"),
        ({"seizure": True}, "seizure", "urgent"),
        ({"fever": True, "swollen_glands": True}, "dress", "high"),  # no rash: high, not urgent
        ({"fall": True}, "fall", "high"),
    ],
)
async def test_red_flag_answers_raise_their_rule_with_advice(
    client: httpx.AsyncClient, world: World, answers: dict[str, object], rule: str, severity: str
) -> None:
    answer = await check_in(client, world["patient_a"], day(0), red_flags=answers)
    assert rules(answer) == {rule}
    flag = answer["flags"][0]
    assert flag["severity"] == severity and flag["status"] == "open" and flag["reason"]
    assert flag["evidence"][0]["type"] == "check_in" and flag["evidence"][0]["id"] == answer["check_in"]["id"]
    assert answer["advice"] == ADVICE[Severity(severity)]


async def test_no_and_zero_answers_raise_nothing(client: httpx.AsyncClient, world: World) -> None:
    answers = {
        "face_swelling": False,
        "breathing_trouble": False,
        "slow_breathing": False,
        "hard_to_wake": False,
        "self_harm_thoughts": 0,
        "fever": True,
        "swollen_glands": False,
        "seizure": False,
        "fall": False,
    }
    answer = await check_in(client, world["patient_a"], day(0), red_flags=answers, anxiety_rating=2)
    assert answer["flags"] == [] and answer["advice"] is None


# CLINICAL.md 3, respiratory risk. The entries are in 2026: born 1961 is 65, born 1962 is 64.
RISKS: dict[str, dict[str, object]] = {
    "none": {},
    "opioid_or_benzodiazepine": {"takes_opioids_or_benzodiazepines": True},
    "other_sedating_medicine": {"takes_other_cns_depressants": True},
    "lung_disease": {"has_lung_disease": True},
    "aged_65": {"birth_year": 1961},
    "aged_64": {"birth_year": 1962},
}
AT_RISK = {"opioid_or_benzodiazepine", "other_sedating_medicine", "lung_disease", "aged_65"}


@pytest.mark.parametrize("risk", list(RISKS))
@pytest.mark.parametrize("code", ["drowsiness", "shortness_of_breath"])
async def test_severe_drowsiness_or_breathlessness_is_urgent_only_at_respiratory_risk(
    client: httpx.AsyncClient, world: World, risk: str, code: str
) -> None:
    patient = world["patient_a"]
    if RISKS[risk]:
        await _set_patient(client, world, **RISKS[risk])
    moderate = await symptom_on(client, patient, day(0), code, severity=2, interference=0)
    assert moderate["flags"] == []
    severe = await symptom_on(client, patient, day(1), code, severity=3, interference=0)
    if risk in AT_RISK:
        assert rules(severe) == {"respiratory_depression", "severe_symptom"}
        urgent = next(f for f in severe["flags"] if f["rule"] == "respiratory_depression")
        assert urgent["severity"] == "urgent" and "at risk of slowed breathing" in urgent["reason"]
    else:
        # Without the risk it is a severe side effect, reviewed within a working day: never urgent.
        assert rules(severe) == {"severe_symptom"}
        assert {f["severity"] for f in severe["flags"]} == {"high"}


async def test_a_risk_fact_set_by_staff_applies_to_the_next_entry(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    before = await symptom_on(client, patient, day(0), "drowsiness", severity=4, interference=0)
    assert "respiratory_depression" not in rules(before)
    await _set_patient(client, world, has_lung_disease=True)
    after = await symptom_on(client, patient, day(1), "drowsiness", severity=4, interference=0)
    assert "respiratory_depression" in rules(after)
    urgent = next(f for f in after["flags"] if f["rule"] == "respiratory_depression")
    assert urgent["evidence"] == [{"type": "symptom", "id": after["id"], "retracted": False}]


@pytest.mark.parametrize(("gap", "fires"), [(0, True), (3, True), (4, False)])
async def test_dress_is_urgent_for_a_fever_with_a_rash_within_3_days(
    client: httpx.AsyncClient, world: World, gap: int, fires: bool
) -> None:
    patient = world["patient_a"]
    fever = await check_in(client, patient, day(0), red_flags={"fever": True})
    assert fever["flags"] == []
    rash = await symptom_on(client, patient, day(gap), "rash", present=1)
    if fires:
        assert rules(rash) == {"dress"} and rash["flags"][0]["severity"] == "urgent"
        assert {e["id"] for e in rash["flags"][0]["evidence"]} == {fever["check_in"]["id"], rash["id"]}
    else:
        assert rules(rash) == {"skin_reaction"}  # a rash alone: high, not DRESS


async def test_dress_is_urgent_for_a_fever_and_a_rash_in_one_check_in(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await check_in(
        client,
        world["patient_a"],
        day(0),
        red_flags={"fever": True},
        symptoms=[{"reported_at": at(day(0), 21), "code": "rash", "present": 1}],
    )
    assert rules(answer) == {"dress"}  # the rash is the dress flag's evidence: no skin_reaction too
    assert answer["flags"][0]["severity"] == "urgent" and answer["advice"] == ADVICE[Severity.urgent]


@pytest.mark.parametrize(("gap", "fires"), [(3, True), (4, False)])
async def test_dress_is_high_for_swollen_glands_and_a_fever_on_another_day(
    client: httpx.AsyncClient, world: World, gap: int, fires: bool
) -> None:
    patient = world["patient_a"]
    await check_in(client, patient, day(0), red_flags={"swollen_glands": True})
    later = await check_in(client, patient, day(gap), red_flags={"fever": True})
    if fires:
        assert rules(later) == {"dress"}
        flag = later["flags"][0]
        assert flag["severity"] == "high" and len(flag["evidence"]) == 2
        assert later["advice"] == ADVICE[Severity.high]
    else:
        assert later["flags"] == []


@pytest.mark.parametrize(("rash_gap", "escalates"), [(3, True), (4, False)])
async def test_a_rash_within_3_days_of_fever_and_glands_escalates_dress_to_urgent(
    client: httpx.AsyncClient, world: World, rash_gap: int, escalates: bool
) -> None:
    patient = world["patient_a"]
    glands = await check_in(client, patient, day(0), red_flags={"fever": True, "swollen_glands": True})
    [high] = glands["flags"]
    assert (high["rule"], high["severity"]) == ("dress", "high")
    rash = await symptom_on(client, patient, day(rash_gap), "rash", present=1)
    if escalates:
        [flag] = rash["flags"]
        assert (flag["id"], flag["rule"], flag["severity"]) == (high["id"], "dress", "urgent")
        assert [step["action"] for step in flag["history"]][-1] == "escalated"
    else:
        assert rules(rash) == {"skin_reaction"}


# ---- skin_reaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("term", "present"), [("rash", 0), ("rash", 1), ("hives", 0), ("hives", 1)])
async def test_a_rash_or_hives_alone_is_a_skin_reaction(
    client: httpx.AsyncClient, world: World, term: str, present: int
) -> None:
    answer = await symptom_on(client, world["patient_a"], day(0), term, present=present)
    if present:
        [flag] = answer["flags"]
        assert (flag["rule"], flag["severity"], flag["symptom_code"]) == ("skin_reaction", "high", term)
        assert flag["evidence"] == [{"type": "symptom", "id": answer["id"], "retracted": False}]
    else:
        assert answer["flags"] == []


async def test_hives_with_face_swelling_in_one_check_in_are_anaphylaxis_only(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await check_in(
        client,
        world["patient_a"],
        day(0),
        red_flags={"face_swelling": True},
        symptoms=[{"reported_at": at(day(0), 21), "code": "hives", "present": 1}],
    )
    assert rules(answer) == {"anaphylaxis"}
    # Hives in the next day's check-in without a red-flag answer are a skin reaction of their own.
    next_day = await check_in(
        client,
        world["patient_a"],
        day(1),
        symptoms=[{"reported_at": at(day(1), 21), "code": "hives", "present": 1}],
    )
    assert rules(next_day) == {"skin_reaction"} and next_day["advice"] == ADVICE[Severity.high]


@pytest.mark.parametrize(
    ("attributes", "fires"),
    [
        ({"severity": 3, "interference": 0}, True),  # severity >= 3 (grade 1)
        ({"severity": 2, "interference": 4}, True),  # grade 3 (S then I: S=2, I=4)
        ({"severity": 2, "interference": 3}, False),  # grade 2, severity 2
    ],
)
async def test_severe_symptom(
    client: httpx.AsyncClient, world: World, attributes: dict[str, int], fires: bool
) -> None:
    answer = await symptom_on(client, world["patient_a"], day(0), "dizziness", **attributes)
    assert ("severe_symptom" in rules(answer)) is fires
    if fires:
        assert answer["flags"][0]["symptom_code"] == "dizziness" or any(
            f["symptom_code"] == "dizziness" for f in answer["flags"]
        )


@pytest.mark.parametrize(
    ("previous", "new", "gap_days", "fires"),
    [
        ({"severity": 1, "interference": 0}, {"severity": 2, "interference": 4}, 3, True),  # 1 -> 3: +2
        ({"severity": 1, "interference": 0}, {"severity": 2, "interference": 2}, 3, False),  # 1 -> 2: +1
        ({"severity": 2, "interference": 2}, {"severity": 2, "interference": 4}, 3, False),  # 2 -> 3: +1
        ({"severity": 0}, {"severity": 2, "interference": 2}, 14, True),  # within 14 days: 0 -> 2
        ({"severity": 0}, {"severity": 2, "interference": 2}, 15, False),  # too old: a first report
        ({"severity": 0}, {"severity": 1, "interference": 2}, 3, False),  # 0 -> 1 (S=1, I=2): +1
        (
            {"severity": 2, "interference": 2},
            {"severity": 3, "interference": 4},
            14,
            False,
        ),  # within 14: 2 -> 3
    ],
)
async def test_worsening_symptom(
    client: httpx.AsyncClient,
    world: World,
    previous: dict[str, int],
    new: dict[str, int],
    gap_days: int,
    fires: bool,
) -> None:
    patient = world["patient_a"]
    await symptom_on(client, patient, day(0), "fatigue", **previous)
    answer = await symptom_on(client, patient, day(gap_days), "fatigue", **new)
    assert ("worsening_symptom" in rules(answer)) is fires


async def test_a_first_report_compares_with_nothing(client: httpx.AsyncClient, world: World) -> None:
    """CLINICAL.md 4 (revised): a first grade-2 report is no longer "worsening against 0"."""
    answer = await symptom_on(client, world["patient_a"], day(0), "memory", severity=2, interference=2)
    assert answer["grade"] == 2 and answer["flags"] == []
    first_of_3 = await symptom_on(
        client, world["patient_a"], day(0), "concentration", severity=2, interference=4
    )
    assert first_of_3["grade"] == 3 and rules(first_of_3) == {"severe_symptom"}


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (2, 5, set()),  # +3
        (2, 6, {"anxiety_worsening"}),  # +4
        (2, 7, {"anxiety_worsening"}),  # +5
        (2, 8, {"anxiety_severe"}),  # +6
        (2, 14, {"anxiety_severe"}),  # +12, total 14
        (14, 14, set()),
        (14, 15, {"anxiety_severe"}),  # crossing into severe
        (11, 15, {"anxiety_severe", "anxiety_worsening"}),  # crossing and +4
        (15, 15, set()),  # severe already: no crossing
        (21, 15, set()),  # a fall that is still severe
        (16, 20, {"anxiety_worsening"}),  # +4 within the severe band
        (15, 21, {"anxiety_severe"}),  # +6 within the severe band
    ],
)
async def test_gad7_rules(
    client: httpx.AsyncClient, world: World, first: int, second: int, expected: set[str]
) -> None:
    patient = world["patient_a"]
    opening = await gad7_on(client, patient, day(0), first)
    assert opening["flags"] == []  # a patient's first GAD-7 never flags, even in the severe band
    answer = await gad7_on(client, patient, day(14), second)
    assert rules(answer) == expected
    severities = {f["rule"]: f["severity"] for f in answer["flags"]}
    assert severities.get("anxiety_severe", "high") == "high"
    assert severities.get("anxiety_worsening", "routine") == "routine"


# A GAD-7 alone, or in a check-in (on PostgreSQL the check-in reads the baseline in the statement that
# inserts it, before the new GAD-7 is visible: services/entries/check_in_statement.py).
SENT = pytest.mark.parametrize("send_gad7", [gad7_on, gad7_in_check_in], ids=["alone", "in a check-in"])


@SENT
@pytest.mark.parametrize(("last", "expected"), [(13, set()), (14, {"anxiety_severe"})])
async def test_anxiety_severe_against_the_treatment_baseline(
    client: httpx.AsyncClient, world: World, last: int, expected: set[str], send_gad7: Any
) -> None:
    """Before treatment 2; the first GAD-7 on or after the first regimen's start (8, +6) is the
    treatment baseline and raises nothing; then 12 (+4: routine) and `last`: +6 from the baseline is
    high, though only +1 or +2 from the previous one."""
    patient = world["patient_a"]
    regimen = {"schedule": [{"time": "08:00", "dose_mg": 300}], "start_date": day(0).isoformat()}
    made = await client.post(
        f"/v1/patients/{patient.patient_id}/regimens", headers=world["provider_a"].headers, json=regimen
    )
    assert made.status_code == 201, made.text
    before = await send_gad7(client, patient, day(-14), 2)
    assert before["flags"] == []
    baseline = await send_gad7(client, patient, day(0), 8)
    assert baseline["flags"] == []
    later = await send_gad7(client, patient, day(14), 12)
    assert rules(later) == {"anxiety_worsening"}
    answer = await send_gad7(client, patient, day(28), last)
    assert rules(answer) == expected
    if expected:
        [flag] = answer["flags"]
        assert "since the start of treatment (8 to 14)" in flag["reason"]
        assert {e["id"] for e in flag["evidence"]} == {answer["id"], baseline["id"]}


@SENT
async def test_a_gad7_recorded_earlier_that_syncs_late_becomes_the_treatment_baseline(
    client: httpx.AsyncClient, world: World, send_gad7: Any
) -> None:
    """The baseline is the first GAD-7 on or after the first regimen's start by when it was recorded:
    one recorded earlier that arrives late takes its place, and later scores are compared with it."""
    patient = world["patient_a"]
    regimen = {"schedule": [{"time": "08:00", "dose_mg": 300}], "start_date": day(0).isoformat()}
    made = await client.post(
        f"/v1/patients/{patient.patient_id}/regimens", headers=world["provider_a"].headers, json=regimen
    )
    assert made.status_code == 201, made.text
    assert (await send_gad7(client, patient, day(7), 9))["flags"] == []  # the first GAD-7 of all
    late = await send_gad7(client, patient, day(1), 3)  # recorded before it: the first, and the baseline
    assert late["flags"] == []
    answer = await send_gad7(client, patient, day(21), 9)  # +6 from the baseline (3), +0 from day 7
    assert rules(answer) == {"anxiety_severe"}


@pytest.mark.parametrize(
    ("clearance", "total", "fires"),
    [
        (None, 3600, False),
        (None, 3900, True),
        (60, 3600, False),
        (60, 3700, True),
        (59, 1400, False),
        (59, 1500, True),
        (29, 700, False),
        (29, 800, True),
        (14, 300, False),
        (14, 400, True),
    ],
)
async def test_dose_above_label_maximum_for_kidney_function(
    client: httpx.AsyncClient, world: World, clearance: float | None, total: int, fires: bool
) -> None:
    patient = world["patient_a"]
    await _set_patient(client, world, creatinine_clearance_ml_min=clearance)
    first = total // 2
    await dose_on(client, patient, day(0), first, hour=8)
    answer = await dose_on(client, patient, day(0), total - first, hour=20)
    assert ("dose_above_max" in rules(answer)) is fires
    if fires:
        assert len(answer["flags"][0]["evidence"]) == 2


async def test_dose_above_the_prescribed_maximum(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    regimen = {
        "schedule": [{"time": "08:00", "dose_mg": 300}, {"time": "20:00", "dose_mg": 300}],
        "start_date": day(-10).isoformat(),
        "max_daily_mg": 900,
    }
    made = await client.post(
        f"/v1/patients/{patient.patient_id}/regimens", headers=world["provider_a"].headers, json=regimen
    )
    assert made.status_code == 201
    await dose_on(client, patient, day(0), 600, hour=8)
    exactly = await dose_on(client, patient, day(0), 300, hour=14)
    assert exactly["flags"] == []
    over = await dose_on(client, patient, day(0), 300, hour=20)
    assert rules(over) == {"dose_above_max"}
    # Skipped doses don't count, and another day starts again from zero.
    skipped = await client.post(
        f"/v1/patients/{patient.patient_id}/doses",
        headers=patient.headers,
        json={
            "id": "7d4f8d0c-55e4-4a53-9d7e-8d6a4d0c2f11",
            "taken_at": "2026-05-05T12:00:00Z",
            "dose_mg": 3000,
            "status": "skipped",
        },
    )
    assert skipped.json()["flags"] == []


@pytest.mark.parametrize(
    ("days", "fires"), [((0, 2, 5), False), ((0, 3, 6), True), ((0, 1, 2), True), ((0, 4, 7), False)]
)
async def test_persistent_symptom_on_3_of_the_last_7_days(
    client: httpx.AsyncClient, world: World, days: tuple[int, ...], fires: bool
) -> None:
    patient = world["patient_a"]
    answers = [await symptom_on(client, patient, day(d), "nausea", frequency=2, severity=2) for d in days[:2]]
    assert all("persistent_symptom" not in rules(a) for a in answers)
    # Grade 2 on the third day (F then S: F=2, S=2); days[2] - days[0] <= 6 is inside the window.
    if days == (0, 2, 5):
        third = await symptom_on(client, patient, day(5), "nausea", frequency=1, severity=1)  # grade 1
    else:
        third = await symptom_on(client, patient, day(days[2]), "nausea", frequency=2, severity=2)
    assert ("persistent_symptom" in rules(third)) is fires


async def test_a_late_report_that_completes_3_of_7_days_raises_persistent_symptom(
    client: httpx.AsyncClient, world: World
) -> None:
    # An offline phone sends day 1 after days 0 and 2: the three days are 3 of one 7-day window.
    patient = world["patient_a"]
    for d in (0, 2):
        answer = await symptom_on(client, patient, day(d), "nausea", frequency=2, severity=2)
        assert "persistent_symptom" not in rules(answer)
    late = await symptom_on(client, patient, day(1), "nausea", frequency=2, severity=2)
    assert "persistent_symptom" in rules(late)
