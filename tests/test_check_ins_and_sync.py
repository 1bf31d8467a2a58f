"""Check-ins (all parts or none) and the offline sync batch."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI

from tests.entry_helpers import ago, dose, gad7, new_id, rating, symptom
from tests.test_entries import _assert_422, _base, _counts
from tests.world import World

NEW_YORK = ZoneInfo("America/New_York")


def _today_at(hour: int) -> str:
    """An instant earlier today in New York (patient_a's zone), never in the future."""
    now = datetime.now(NEW_YORK)
    moment = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return min(moment, now - timedelta(minutes=1)).isoformat()


def _check_in(**fields: Any) -> dict[str, Any]:
    today = datetime.now(NEW_YORK).date().isoformat()
    return {"id": new_id(), "date": today, "submitted_at": ago(minutes=1), **fields}


async def test_a_full_check_in_is_stored_whole(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    body = _check_in(
        anxiety_rating=6,
        gad7=[2, 2, 2, 1, 1, 1, 1],
        doses=[dose(taken_at=_today_at(0)), {"taken_at": _today_at(0), "dose_mg": 300, "status": "skipped"}],
        symptoms=[symptom("drowsiness", severity=2, interference=1, reported_at=_today_at(0))],
        red_flags={"fever": True, "self_harm_thoughts": 0},
        note="slept badly",
    )
    response = await client.post(f"{_base(patient)}/check-ins", headers=patient.headers, json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["flags"] == [] and answer["advice"] is None
    check_in = answer["check_in"]
    assert check_in["date"] == body["date"]
    assert check_in["red_flags"]["fever"] is True and check_in["red_flags"]["seizure"] is False
    assert check_in["red_flags"]["self_harm_thoughts"] == 0
    assert len(check_in["doses"]) == 2 and {d["status"] for d in check_in["doses"]} == {"taken", "skipped"}
    assert check_in["symptoms"][0]["grade"] == 1  # S then I: S=2, I=1
    by_instrument = {a["instrument"]: a for a in check_in["anxiety"]}
    assert by_instrument["rating"]["score"] == 6 and by_instrument["gad7"]["total"] == 10
    assert await _counts(app) == (2, 2, 1, 1)
    # Its parts appear in their own lists too.
    doses = (await client.get(f"{_base(patient)}/doses", headers=patient.headers)).json()["items"]
    assert {d["check_in_id"] for d in doses} == {body["id"]}

    retry = await client.post(f"{_base(patient)}/check-ins", headers=patient.headers, json=body)
    assert retry.status_code == 200
    assert retry.json()["check_in"]["doses"] == answer["check_in"]["doses"]
    assert retry.json()["check_in"]["symptoms"] == answer["check_in"]["symptoms"]
    assert retry.json()["check_in"]["anxiety"] == answer["check_in"]["anxiety"]
    assert retry.json() == answer
    assert await _counts(app) == (2, 2, 1, 1)
    changed = await client.post(
        f"{_base(patient)}/check-ins", headers=patient.headers, json={**body, "anxiety_rating": 7}
    )
    assert changed.status_code == 409

    # Entered in error: the check-in takes its parts with it.
    deleted = await client.delete(f"{_base(patient)}/check-ins/{body['id']}", headers=patient.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{_base(patient)}/doses", headers=patient.headers)).json()["items"] == []


async def test_a_bad_part_rejects_the_whole_check_in(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    yesterday = (datetime.now(NEW_YORK) - timedelta(days=1)).replace(hour=12).isoformat()
    cases = [
        (_check_in(doses=[dose(taken_at=yesterday)]), ("body", "doses", 0, "taken_at")),
        (
            _check_in(symptoms=[symptom("nausea", frequency=2, reported_at=yesterday)]),
            ("body", "symptoms", 0),
        ),
        (
            _check_in(symptoms=[symptom("nausea", frequency=2, severity=9, reported_at=_today_at(0))]),
            ("body", "symptoms", 0, "severity"),
        ),
        (_check_in(gad7=[1, 1, 1]), ("body", "gad7")),
        (_check_in(anxiety_rating=12), ("body", "anxiety_rating")),
        (_check_in(red_flags={"headache": True}), ("body", "red_flags", "headache")),
        (_check_in(red_flags={"self_harm_thoughts": 4}), ("body", "red_flags", "self_harm_thoughts")),
        (_check_in(red_flags={"fever": 2}), ("body", "red_flags", "fever")),
        (_check_in(date=(datetime.now(NEW_YORK).date() + timedelta(days=1)).isoformat()), ("body", "date")),
        (_check_in(submitted_at=ago(minutes=-30)), ("body", "submitted_at")),
        (_check_in(doses=[dose(taken_at=_today_at(0), dose_mg=4000)]), ("body", "doses", 0, "dose_mg")),
    ]
    for body, loc in cases:
        valid_part = dose(taken_at=_today_at(0))
        body = {**body, "doses": [valid_part, *body.get("doses", [])]} if "doses" in body else body
        if "doses" in body and loc[:2] == ("body", "doses"):
            loc = (*loc[:2], loc[2] + 1, *loc[3:])  # type: ignore[operator]
        _assert_422(
            await client.post(f"{_base(patient)}/check-ins", headers=patient.headers, json=body), *loc
        )
    assert await _counts(app) == (0, 0, 0, 0)


async def test_sync_mixes_good_and_bad_entries(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    patient, other = world["patient_a"], world["patient_b"]
    pid = str(patient.patient_id)
    good_dose = dose()
    stored_first = dose()
    await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=stored_first)
    entries = [
        {"type": "dose", "patient_id": pid, **good_dose},
        {"type": "anxiety", "patient_id": pid, **gad7([1, 1, 1])},  # partial GAD-7
        {"type": "symptom", "patient_id": "me", **symptom("dizziness", severity=3, interference=3)},
        {"type": "dose", "patient_id": pid, **stored_first},  # identical retry
        {"type": "dose", "patient_id": pid, **{**stored_first, "dose_mg": 900}},  # conflict
        {"type": "check_in", "patient_id": pid, **_check_in(anxiety_rating=2)},
        {"type": "dose", "patient_id": str(other.patient_id), **dose()},  # not theirs
        {"type": "mood", "patient_id": pid, "id": new_id()},
        {"type": "anxiety", "patient_id": pid, **rating(5)},
        {"type": "dose", "patient_id": pid, **dose(dose_mg=-1)},
    ]
    response = await client.post("/v1/sync", headers=patient.headers, json={"entries": entries})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 201, 200, 409, 201, 404, 422, 201, 422]
    assert [r["id"] for r in results] == [e.get("id") for e in entries]
    assert ["items"] in [e["loc"] for e in results[1]["error"]["errors"]]
    assert ["dose_mg"] in [e["loc"] for e in results[9]["error"]["errors"]]
    assert await _counts(app) == (2, 2, 1, 1)  # two doses, gad7-free: rating + check-in's rating


async def test_sync_refuses_more_than_500_entries(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    entries = [{"type": "dose", "patient_id": "me", **dose()} for _ in range(501)]
    response = await client.post("/v1/sync", headers=patient.headers, json={"entries": entries})
    _assert_422(response, "body", "entries")


async def test_sync_of_500_entries_stores_them_all(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    entries = [{"type": "dose", "patient_id": "me", **dose()} for _ in range(500)]
    response = await client.post("/v1/sync", headers=patient.headers, json={"entries": entries})
    assert response.status_code == 200
    assert {r["status"] for r in response.json()["results"]} == {201}
    assert (await _counts(app))[0] == 500
