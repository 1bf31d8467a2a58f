"""Every rule of CLINICAL.md section 4, fired through the HTTP API, just inside and just outside its
threshold."""

from __future__ import annotations

import httpx
import pytest

from models.flags import Severity
from services.clinical.rules import ADVICE
from tests.flag_helpers import check_in, day, dose_on, gad7_on, rules, symptom_on
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
        ({"self_harm_thoughts": 1}, "suicidality", "urgent"),
        ({"self_harm_thoughts": 3}, "suicidality", "urgent"),
        ({"seizure": True}, "seizure", "urgent"),
        ({"fever": True, "swollen_glands": True}, "dress", "urgent"),
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
        "hard_to_wake": False,
        "self_harm_thoughts": 0,
        "fever": True,
        "swollen_glands": False,
        "seizure": False,
        "fall": False,
    }
    answer = await check_in(client, world["patient_a"], day(0), red_flags=answers, anxiety_rating=2)
    assert answer["flags"] == [] and answer["advice"] is None


async def test_drowsiness_is_respiratory_depression_only_with_opioids_or_benzodiazepines(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    without = await symptom_on(client, patient, day(0), "drowsiness", severity=3, interference=0)
    assert "respiratory_depression" not in rules(without)
    await _set_patient(client, world, takes_opioids_or_benzodiazepines=True)
    mild = await symptom_on(client, patient, day(1), "drowsiness", severity=2, interference=0)
    assert "respiratory_depression" not in rules(mild)
    severe = await symptom_on(client, patient, day(2), "drowsiness", severity=3, interference=0)
    assert "respiratory_depression" in rules(severe)


@pytest.mark.parametrize(("gap", "fires"), [(0, True), (3, True), (4, False)])
async def test_dress_pairs_fever_with_a_rash_within_3_days(
    client: httpx.AsyncClient, world: World, gap: int, fires: bool
) -> None:
    patient = world["patient_a"]
    fever = await check_in(client, patient, day(0), red_flags={"fever": True})
    assert fever["flags"] == []
    rash = await symptom_on(client, patient, day(gap), "rash", present=1)
    assert ("dress" in rules(rash)) is fires


async def test_dress_pairs_swollen_glands_on_another_day(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    await check_in(client, patient, day(0), red_flags={"swollen_glands": True})
    later = await check_in(client, patient, day(2), red_flags={"fever": True})
    assert "dress" in rules(later)
    assert len(later["flags"][0]["evidence"]) == 2


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
        ({"severity": 2, "interference": 2}, {"severity": 2, "interference": 2}, 15, True),  # too old: 0 -> 2
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


async def test_a_first_report_of_grade_2_is_worsening_against_0(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await symptom_on(client, world["patient_a"], day(0), "memory", severity=2, interference=2)
    assert rules(answer) == {"worsening_symptom"}
    first_of_1 = await symptom_on(
        client, world["patient_a"], day(0), "concentration", severity=1, interference=0
    )
    assert first_of_1["flags"] == []


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (2, 5, set()),  # +3
        (2, 6, {"anxiety_worsening"}),  # +4
        (2, 7, {"anxiety_worsening"}),  # +5
        (2, 8, {"anxiety_severe"}),  # +6
        (2, 14, {"anxiety_severe"}),  # +12, total 14
        (14, 14, set()),
        (14, 15, {"anxiety_severe"}),  # total 15
        (11, 15, {"anxiety_severe", "anxiety_worsening"}),  # total 15 and +4
    ],
)
async def test_gad7_rules(
    client: httpx.AsyncClient, world: World, first: int, second: int, expected: set[str]
) -> None:
    patient = world["patient_a"]
    opening = await gad7_on(client, patient, day(0), first)
    assert rules(opening) == ({"anxiety_severe"} if first >= 15 else set())
    answer = await gad7_on(client, patient, day(14), second)
    assert rules(answer) == expected
    severities = {f["rule"]: f["severity"] for f in answer["flags"]}
    assert severities.get("anxiety_severe", "high") == "high"
    assert severities.get("anxiety_worsening", "routine") == "routine"


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
