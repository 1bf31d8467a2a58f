"""Entries through the HTTP API: every type, idempotent retries and conflicts, races, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from services.database import session_scope
from tests.entry_helpers import ago, dose, gad7, new_id, rating, symptom
from tests.world import Person, World


def _base(person: Person) -> str:
    return f"/v1/patients/{person.patient_id}"


async def _counts(app: FastAPI) -> tuple[int, ...]:
    async with session_scope(app.state.session_factory) as session:
        counts = []
        for model in (Dose, AnxietyScore, SymptomReport, CheckIn):
            counts.append(int(await session.scalar(select(func.count()).select_from(model)) or 0))
        return tuple(counts)


def _assert_422(response: httpx.Response, *loc: str | int) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    locs = [tuple(error["loc"]) for error in response.json()["errors"]]
    assert any(found[: len(loc)] == loc for found in locs), (loc, locs)


async def test_dose_is_created_then_retried_then_conflicts(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    body = dose(note="with breakfast")
    first = await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body)
    assert first.status_code == 201, first.text
    stored = first.json()
    assert stored["dose_mg"] == 300 and stored["status"] == "taken" and stored["medication"] == "gabapentin"
    assert stored["flags"] == [] and stored["entered_in_error"] is False
    assert stored["taken_at"].endswith("Z")

    retry = await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body)
    assert retry.status_code == 200
    assert retry.json() == stored

    changed = await client.post(
        f"{_base(patient)}/doses", headers=patient.headers, json={**body, "dose_mg": 600}
    )
    assert changed.status_code == 409
    assert changed.headers["content-type"].startswith("application/problem+json")
    listed = (await client.get(f"{_base(patient)}/doses", headers=patient.headers)).json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]


async def test_the_same_instant_in_another_offset_is_the_same_content(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    body = dose(taken_at="2026-06-01T14:00:00+02:00")
    first = await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body)
    assert first.status_code == 201
    assert first.json()["taken_at"] == "2026-06-01T12:00:00Z"  # answers give UTC
    same = {**body, "taken_at": "2026-06-01T12:00:00Z"}
    assert (
        await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=same)
    ).status_code == 200


async def test_two_identical_requests_racing_store_one_entry(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    body = dose()
    answers = await asyncio.gather(
        *(client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body) for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert (await _counts(app))[0] == 1


async def test_two_different_requests_racing_on_one_id_conflict(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    body = dose()
    answers = await asyncio.gather(
        client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body),
        client.post(f"{_base(patient)}/doses", headers=patient.headers, json={**body, "dose_mg": 100}),
    )
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert (await _counts(app))[0] == 1


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"dose_mg": 0}, ("body", "dose_mg")),
        ({"dose_mg": -300}, ("body", "dose_mg")),
        ({"dose_mg": 3600.5}, ("body", "dose_mg")),
        ({"status": "lost"}, ("body", "status")),
        ({"taken_at": "11 minutes from now"}, ("body", "taken_at")),  # made when the test runs
        ({"taken_at": "2026-06-01T08:00:00"}, ("body", "taken_at")),  # no offset
        ({"id": "not-a-uuid"}, ("body", "id")),
        ({"note": "x" * 2001}, ("body", "note")),
        ({"unexpected": 1}, ("body", "unexpected")),
    ],
)
async def test_bad_doses_are_422_and_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World, change: dict[str, Any], loc: tuple[str, ...]
) -> None:
    patient = world["patient_a"]
    if change.get("taken_at") == "11 minutes from now":
        change = {"taken_at": ago(minutes=-11)}
    _assert_422(
        await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=dose(**change)), *loc
    )
    assert await _counts(app) == (0, 0, 0, 0)


async def test_a_dose_3600_mg_and_a_timestamp_9_minutes_ahead_are_accepted(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    response = await client.post(
        f"{_base(patient)}/doses", headers=patient.headers, json=dose(dose_mg=3600, taken_at=ago(minutes=-9))
    )
    assert response.status_code == 201, response.text


async def test_dose_medication_defaults_to_the_regimen_in_force(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    regimen = {
        "medication": "gabapentin-er",
        "schedule": [{"time": "21:00", "dose_mg": 600}],
        "start_date": "2026-01-01",
    }
    created = await client.post(
        f"{_base(patient)}/regimens", headers=world["provider_a"].headers, json=regimen
    )
    assert created.status_code == 201, created.text
    answer = await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=dose())
    assert answer.json()["medication"] == "gabapentin-er"


@pytest.mark.parametrize(
    ("items", "total", "band"),
    [
        ([0] * 7, 0, "minimal"),
        ([1, 1, 1, 1, 0, 0, 0], 4, "minimal"),
        ([1, 1, 1, 1, 1, 0, 0], 5, "mild"),
        ([3, 3, 3, 0, 0, 0, 0], 9, "mild"),
        ([3, 3, 3, 1, 0, 0, 0], 10, "moderate"),
        ([2, 2, 2, 2, 2, 2, 2], 14, "moderate"),
        ([3, 2, 2, 2, 2, 2, 2], 15, "severe"),
        ([3] * 7, 21, "severe"),
    ],
)
async def test_gad7_total_and_band_at_the_edges(
    client: httpx.AsyncClient, world: World, items: list[int], total: int, band: str
) -> None:
    patient = world["patient_a"]
    response = await client.post(f"{_base(patient)}/anxiety", headers=patient.headers, json=gad7(items))
    assert response.status_code == 201, response.text
    assert (response.json()["total"], response.json()["band"]) == (total, band)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (gad7([1, 1, 1, 1, 1, 1]), ("body", "items")),  # partial: never scored
        (gad7([1] * 8), ("body", "items")),
        (gad7([1, 1, 4, 1, 1, 1, 1]), ("body", "items", 2)),
        (gad7([1, 1, -1, 1, 1, 1, 1]), ("body", "items", 2)),
        (gad7([1, 1, True, 1, 1, 1, 1]), ("body", "items", 2)),
        ({**gad7([1] * 7), "score": 3}, ("body", "score")),
        (rating(11), ("body", "score")),
        (rating(-1), ("body", "score")),
        ({**rating(3), "items": [1] * 7}, ("body", "items")),
        (
            {"id": new_id(), "recorded_at": ago(minutes=1), "instrument": "phq9", "score": 1},
            ("body", "instrument"),
        ),
    ],
)
async def test_bad_anxiety_scores_are_422(
    app: FastAPI, client: httpx.AsyncClient, world: World, body: dict[str, Any], loc: tuple[str, ...]
) -> None:
    patient = world["patient_a"]
    _assert_422(await client.post(f"{_base(patient)}/anxiety", headers=patient.headers, json=body), *loc)
    assert await _counts(app) == (0, 0, 0, 0)


async def test_rating_is_stored(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    response = await client.post(f"{_base(patient)}/anxiety", headers=patient.headers, json=rating(10))
    assert response.status_code == 201
    assert response.json()["score"] == 10 and response.json()["total"] is None


async def test_symptom_reports_are_graded_and_zero_filled(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]

    async def report(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(f"{_base(patient)}/symptoms", headers=patient.headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    dizzy = await report(symptom("dizziness", severity=3, interference=4))
    assert dizzy["grade"] == 3 and dizzy["frequency"] is None
    calm = await report(symptom("dizziness", severity=0))
    assert (calm["severity"], calm["interference"], calm["grade"]) == (0, 0, 0)
    swelling = await report(symptom("limb_swelling", frequency=0))
    assert (swelling["severity"], swelling["interference"], swelling["grade"]) == (0, 0, 0)
    rash = await report(symptom("rash", present=True))
    assert rash["present"] == 1 and rash["grade"] is None


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (symptom("headache", severity=1), ("body", "code")),
        (symptom("dizziness", frequency=1, severity=1, interference=1), ("body", "frequency")),
        (symptom("dizziness", severity=5, interference=0), ("body", "severity")),
        (symptom("dizziness", severity=2), ("body", "interference")),
        (symptom("dizziness", severity=0, interference=2), ("body", "interference")),
        (symptom("dizziness", interference=2), ("body", "severity")),
        (symptom("rash", present=2), ("body", "present")),
        (symptom("nausea", frequency=1.5, severity=1), ("body", "frequency")),
    ],
)
async def test_bad_symptom_reports_are_422(
    app: FastAPI, client: httpx.AsyncClient, world: World, body: dict[str, Any], loc: tuple[str, ...]
) -> None:
    patient = world["patient_a"]
    _assert_422(await client.post(f"{_base(patient)}/symptoms", headers=patient.headers, json=body), *loc)
    assert await _counts(app) == (0, 0, 0, 0)


async def test_entered_in_error_is_kept_but_left_out_of_lists(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    body = dose()
    await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body)
    deleted = await client.delete(f"{_base(patient)}/doses/{body['id']}", headers=patient.headers)
    assert deleted.status_code == 204
    again = await client.delete(f"{_base(patient)}/doses/{body['id']}", headers=patient.headers)
    assert again.status_code == 204
    assert (await client.get(f"{_base(patient)}/doses", headers=patient.headers)).json()["items"] == []
    kept = (
        await client.get(f"{_base(patient)}/doses?include_entered_in_error=true", headers=patient.headers)
    ).json()
    assert [item["entered_in_error"] for item in kept["items"]] == [True]
    # The same id again is still taken: the retry answers the stored (entered-in-error) entry.
    retry = await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body)
    assert retry.status_code == 200 and retry.json()["entered_in_error"] is True
    # Another patient's entry id, or an unknown one, is not found.
    other = world["patient_a2"]
    assert (
        await client.delete(f"{_base(other)}/doses/{body['id']}", headers=other.headers)
    ).status_code == 404
    assert (
        await client.delete(f"{_base(patient)}/doses/{new_id()}", headers=patient.headers)
    ).status_code == 404


async def test_lists_filter_by_local_date_and_page(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]  # America/New_York
    for day in range(1, 6):
        body = dose(taken_at=f"2026-07-0{day}T03:30:00Z")  # 23:30 the evening before in New York
        assert (
            await client.post(f"{_base(patient)}/doses", headers=patient.headers, json=body)
        ).status_code == 201
    page = (
        await client.get(f"{_base(patient)}/doses?from=2026-07-01&to=2026-07-03", headers=patient.headers)
    ).json()
    assert [item["local_date"] for item in page["items"]] == ["2026-07-01", "2026-07-02", "2026-07-03"]
    first = (await client.get(f"{_base(patient)}/doses?limit=2", headers=patient.headers)).json()
    second = (
        await client.get(
            f"{_base(patient)}/doses?limit=2&cursor={first['next_cursor']}", headers=patient.headers
        )
    ).json()
    third = (
        await client.get(
            f"{_base(patient)}/doses?limit=2&cursor={second['next_cursor']}", headers=patient.headers
        )
    ).json()
    dates = [i["local_date"] for i in first["items"] + second["items"] + third["items"]]
    assert dates == ["2026-06-30", "2026-07-01", "2026-07-02", "2026-07-03", "2026-07-04"]
    assert third["next_cursor"] is None
    backwards = await client.get(
        f"{_base(patient)}/doses?from=2026-07-05&to=2026-07-01", headers=patient.headers
    )
    assert backwards.status_code == 422


async def test_regimens_replace_the_previous_one_the_day_before(
    client: httpx.AsyncClient, world: World
) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    first = {"schedule": [{"time": "08:00", "dose_mg": 300}], "start_date": "2026-01-01", "max_daily_mg": 900}
    second = {
        "schedule": [{"time": "20:00", "dose_mg": 300}, {"time": "08:00", "dose_mg": 300}],
        "start_date": "2026-02-15",
        "taper": True,
    }
    assert (
        await client.post(f"{_base(patient)}/regimens", headers=provider.headers, json=first)
    ).status_code == 201
    made = await client.post(f"{_base(patient)}/regimens", headers=provider.headers, json=second)
    assert made.status_code == 201
    assert [slot["time"] for slot in made.json()["schedule"]] == ["08:00", "20:00"]
    listed = (await client.get(f"{_base(patient)}/regimens", headers=patient.headers)).json()
    assert [(r["start_date"], r["end_date"]) for r in listed] == [
        ("2026-01-01", "2026-02-14"),
        ("2026-02-15", None),
    ]
    assert listed[0]["rxnorm"] == "25480" and listed[1]["taper"] is True
    bad = await client.post(
        f"{_base(patient)}/regimens",
        headers=provider.headers,
        json={**first, "schedule": [{"time": "25:00", "dose_mg": 300}]},
    )
    _assert_422(bad, "body", "schedule")
    twice = await client.post(
        f"{_base(patient)}/regimens",
        headers=provider.headers,
        json={**first, "schedule": [{"time": "08:00", "dose_mg": 1}, {"time": "08:00", "dose_mg": 1}]},
    )
    _assert_422(twice, "body", "schedule")
    refused = await client.post(f"{_base(patient)}/regimens", headers=patient.headers, json=first)
    assert refused.status_code == 403


async def test_catalog_serves_terms_and_red_flags(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/catalog")
    assert response.status_code == 200
    catalog = response.json()
    assert len(catalog["terms"]) == 17 and len(catalog["red_flags"]) == 9
    dizziness = next(t for t in catalog["terms"] if t["code"] == "dizziness")
    assert [a["name"] for a in dizziness["attributes"]] == ["severity", "interference"]
    assert dizziness["snomed_ct"] == "404640003"
    assert catalog["gad7"]["total_loinc"] == "70274-6" and len(catalog["gad7"]["items"]) == 7
    harm = next(q for q in catalog["red_flags"] if q["code"] == "self_harm_thoughts")
    assert harm["scale"] == "0-3"
    # CLINICAL.md 3 (revised): slow breathing is its own question, no longer part of breathing_trouble.
    slow = next(q for q in catalog["red_flags"] if q["code"] == "slow_breathing")
    assert slow["question"] == "Slow or shallow breathing?" and slow["scale"] == "yes_no"
    trouble = next(q for q in catalog["red_flags"] if q["code"] == "breathing_trouble")
    assert trouble["question"] == "Trouble breathing or swallowing?"
