"""Summary numbers against a small hand-worked scenario; the panel order; CSV and FHIR exports.

The scenario (patient_a, America/New_York), window 2026-03-07 to 2026-03-10:
- regimen A from 03-05: 08:00 and 20:00, 300 mg each; regimen B from 03-09 (A ends 03-08): 08:00, 14:00
  and 22:00, 400 mg each. 03-08 is the spring-forward day (23 hours; 08:00 EDT is 12:00Z).
- 03-07: 08:10 taken (on time), 20:00 skipped.                scheduled 2, taken 1, on time 1, 300 mg
- 03-08: 07:20 EDT taken (40 min early: on time only if DST is right), 21:30 taken (90 min late).
                                                              scheduled 2, taken 2, on time 1, 600 mg
- 03-09: 08:05 and 14:00 taken; 22:00 taken but entered in error. scheduled 3, taken 2, on time 2, 800 mg
- 03-10: 08:00 taken.                                          scheduled 3, taken 1, on time 1, 400 mg
Adherence: 6 of 10 = 60.0 %, on time 5 of 10 = 50.0 %. Doses on 03-06 and 03-11 lie outside.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle

from models.accounts import Role
from models.base import utcnow
from services.accounts import users as accounts
from services.accounts.auth import start_session
from services.database import session_scope
from services.pagination import b64_json_encode
from tests.flag_helpers import NEW_YORK, at, post
from tests.world import Person, World

PANEL_FIELDS = {
    "unacknowledged",
    "patient_id",
    "name",
    "open_flags",
    "last_check_in",
    "adherence_7d",
    "gad7_last_band",
    "worst_grade_7d",
}

D = date(2026, 3, 7)


def _day(n: int) -> date:
    return D + timedelta(days=n)


async def _regimen(
    client: httpx.AsyncClient, world: World, start: str, schedule: list[tuple[str, int]]
) -> None:
    body = {"schedule": [{"time": t, "dose_mg": mg} for t, mg in schedule], "start_date": start}
    response = await client.post(
        f"/v1/patients/{world['patient_a'].patient_id}/regimens",
        headers=world["provider_a"].headers,
        json=body,
    )
    assert response.status_code == 201, response.text


async def _dose(
    client: httpx.AsyncClient,
    person: Person,
    day: date,
    hour: int,
    minute: int,
    mg: float,
    status: str = "taken",
) -> dict[str, Any]:
    return await post(
        client, person, "doses", {"taken_at": at(day, hour, minute), "dose_mg": mg, "status": status}
    )


async def _scenario(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    patient = world["patient_a"]
    await _regimen(client, world, "2026-03-05", [("08:00", 300), ("20:00", 300)])
    await _regimen(client, world, "2026-03-09", [("08:00", 400), ("14:00", 400), ("22:00", 400)])
    await _dose(client, patient, _day(-1), 8, 0, 300)  # outside the window
    await _dose(client, patient, _day(0), 8, 10, 300)
    await _dose(client, patient, _day(0), 20, 0, 300, status="skipped")
    await _dose(client, patient, _day(1), 7, 20, 300)
    await _dose(client, patient, _day(1), 21, 30, 300)
    await _dose(client, patient, _day(2), 8, 5, 400)
    await _dose(client, patient, _day(2), 14, 0, 400)
    wrong = await _dose(client, patient, _day(2), 22, 0, 400)
    assert (
        await client.delete(f"/v1/patients/me/doses/{wrong['id']}", headers=patient.headers)
    ).status_code == 204
    await _dose(client, patient, _day(3), 8, 0, 400)
    await _dose(client, patient, _day(4), 8, 0, 400)  # outside the window
    gad7 = {"instrument": "gad7"}
    await post(
        client, patient, "anxiety", {**gad7, "recorded_at": at(_day(0), 9), "items": [2, 2, 2, 2, 2, 1, 1]}
    )
    error = await post(
        client, patient, "anxiety", {**gad7, "recorded_at": at(_day(2), 9), "items": [3] * 6 + [2]}
    )
    await client.delete(f"/v1/patients/me/anxiety/{error['id']}", headers=patient.headers)
    await post(
        client, patient, "anxiety", {**gad7, "recorded_at": at(_day(3), 9), "items": [2, 2, 1, 1, 1, 1, 0]}
    )
    for n, score in ((0, 6), (1, 4), (2, 5)):
        await post(
            client,
            patient,
            "anxiety",
            {"instrument": "rating", "recorded_at": at(_day(n), 21), "score": score},
        )
    await post(
        client,
        patient,
        "symptoms",
        {"reported_at": at(_day(0), 12), "code": "dizziness", "severity": 2, "interference": 1},
    )
    await post(
        client,
        patient,
        "symptoms",
        {"reported_at": at(_day(2), 12), "code": "dizziness", "severity": 3, "interference": 2},
    )
    await post(
        client,
        patient,
        "symptoms",
        {"reported_at": at(_day(2), 20), "code": "dizziness", "severity": 1, "interference": 0},
    )
    nausea = await post(
        client,
        patient,
        "symptoms",
        {"reported_at": at(_day(1), 12), "code": "nausea", "frequency": 2, "severity": 2, "note": "=SUM(A1)"},
    )
    # A first report of nausea compares with nothing (CLINICAL.md 4, second revision): no flag.
    assert nausea["flags"] == []
    check_ins = []
    for n in (0, 2):
        response = await client.post(
            f"/v1/patients/{patient.patient_id}/check-ins",
            headers=patient.headers,
            json={
                "id": f"00000000-0000-4000-8000-00000000000{n}",
                "date": _day(n).isoformat(),
                "submitted_at": at(_day(n), 22),
                # A fall on the first day: a high flag, acknowledged below.
                "red_flags": {"fall": n == 0},
            },
        )
        assert response.status_code == 201
        check_ins.append(response.json())
    # Acknowledged flags are no longer counted as open.
    [fall] = check_ins[0]["flags"]
    acknowledged = await client.post(
        f"/v1/flags/{fall['id']}/acknowledge", headers=world["provider_a"].headers
    )
    assert acknowledged.status_code == 200, acknowledged.text
    return {"nausea": nausea, "fall": fall}


async def test_summary_numbers_match_the_hand_worked_scenario(
    client: httpx.AsyncClient, world: World
) -> None:
    await _scenario(client, world)
    response = await client.get(
        f"/v1/patients/{world['patient_a'].patient_id}/summary?from=2026-03-07&to=2026-03-10",
        headers=world["provider_a"].headers,
    )
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["from"], summary["to"]) == ("2026-03-07", "2026-03-10")
    assert summary["adherence"] == {"scheduled": 10, "taken": 6, "percent": 60.0, "on_time_percent": 50.0}
    assert summary["daily_mg"] == [
        {"date": "2026-03-07", "mg": 300.0},
        {"date": "2026-03-08", "mg": 600.0},
        {"date": "2026-03-09", "mg": 800.0},
        {"date": "2026-03-10", "mg": 400.0},
    ]
    assert summary["regimen"]["start_date"] == "2026-03-09" and len(summary["regimen"]["schedule"]) == 3
    assert [r["end_date"] for r in summary["regimens"]] == ["2026-03-08", None]
    gad7 = summary["gad7"]
    assert (gad7["first"], gad7["last"], gad7["change"], gad7["last_band"]) == (12, 8, -4, "mild")
    assert [(p["date"], p["total"], p["band"]) for p in gad7["series"]] == [
        ("2026-03-07", 12, "moderate"),
        ("2026-03-10", 8, "mild"),
    ]
    assert summary["rating"]["mean"] == 5.0
    assert [p["score"] for p in summary["rating"]["series"]] == [6, 4, 5]
    assert summary["symptoms"] == [
        {"code": "dizziness", "reports": 3, "days": 2, "max_grade": 2, "last_grade": 1},
        {"code": "nausea", "reports": 1, "days": 1, "max_grade": 2, "last_grade": 2},
    ]
    # Open: severe_symptom (dizziness severity 3), and anxiety_severe raised by the GAD-7 of 20 that was
    # later entered in error (its evidence is retracted; a clinician closes it). The fall of 03-07 was
    # acknowledged, so it no longer counts as open.
    assert summary["open_flags"] == {"urgent": 0, "high": 2, "routine": 0}
    # Check-ins over the 4 days a regimen was in force (regimen A from 03-05): 2 of 4.
    assert summary["check_ins"] == {"days": 2, "percent": 50.0, "regimen_days": 4}
    # The treatment baseline: the first GAD-7 on or after regimen A's start (03-05), the 12 of 03-07.
    assert gad7["baseline"] == {"value": 12, "date": "2026-03-07"}
    assert gad7["change_from_baseline"]["points"] == -4
    assert gad7["change_from_baseline"]["meaning"].startswith("clinically important improvement")


@pytest.mark.one_database  # who may read is decided before any query the databases answer differently
async def test_a_patient_reads_their_own_summary_and_no_one_elses(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    await _regimen(client, world, "2026-03-05", [("08:00", 300), ("20:00", 300)])
    await _dose(client, patient, _day(0), 8, 10, 300)
    symptom = {"reported_at": at(_day(1), 12), "code": "dizziness", "severity": 3, "interference": 1}
    await post(client, patient, "symptoms", symptom)
    window = "?from=2026-03-07&to=2026-03-10"
    staff = await client.get(
        f"/v1/patients/{patient.patient_id}/summary{window}", headers=world["provider_a"].headers
    )
    assert staff.status_code == 200
    for ref in ("me", str(patient.patient_id)):
        own = await client.get(f"/v1/patients/{ref}/summary{window}", headers=patient.headers)
        assert own.status_code == 200, own.text
        # The same shape and numbers (flags included): nothing in the summary is staff-only.
        assert own.json() == staff.json(), own.json()["open_flags"]
        assert own.json()["open_flags"]["high"] >= 1 and own.json()["daily_mg"][0]["mg"] == 300.0
    # Another patient's summary, and a provider not on the patient's care team: not found.
    other = await client.get(
        f"/v1/patients/{world['patient_a2'].patient_id}/summary", headers=patient.headers
    )
    assert other.status_code == 404
    elsewhere = await client.get(
        f"/v1/patients/{patient.patient_id}/summary", headers=world["patient_b"].headers
    )
    assert elsewhere.status_code == 404
    assert (
        await client.get(f"/v1/patients/{patient.patient_id}/summary", headers=world["provider_a2"].headers)
    ).status_code == 404


async def test_summary_access_and_windows(client: httpx.AsyncClient, world: World) -> None:
    path = f"/v1/patients/{world['patient_a'].patient_id}/summary"
    assert (await client.get(path, headers=world["provider_a2"].headers)).status_code == 404
    default = await client.get(path, headers=world["admin_a"].headers)
    assert default.status_code == 200
    body = default.json()
    assert (date.fromisoformat(body["to"]) - date.fromisoformat(body["from"])).days == 29
    assert len(body["daily_mg"]) == 30 and body["adherence"]["percent"] is None
    assert (
        await client.get(f"{path}?from=2026-03-10&to=2026-03-01", headers=world["admin_a"].headers)
    ).status_code == 422
    assert (
        await client.get(f"{path}?from=2020-01-01&to=2026-03-01", headers=world["admin_a"].headers)
    ).status_code == 422


async def test_panel_is_most_urgent_first(client: httpx.AsyncClient, world: World) -> None:
    from datetime import datetime

    patient_2 = world["patient_a2"]
    today = datetime.now(NEW_YORK).date()
    # patient_a2: a regimen with a dose at local midnight, taken on 5 of the last 7 days; an urgent flag.
    response = await client.post(
        f"/v1/patients/{patient_2.patient_id}/regimens",
        headers=world["admin_a"].headers,
        json={
            "schedule": [{"time": "00:00", "dose_mg": 300}],
            "start_date": (today - timedelta(days=20)).isoformat(),
        },
    )
    assert response.status_code == 201
    for n in (0, 1, 2, 4, 6):
        await _dose(client, patient_2, today - timedelta(days=n), 0, 5, 300)
    await post(
        client,
        patient_2,
        "anxiety",
        {
            "instrument": "gad7",
            "recorded_at": at(today - timedelta(days=3), 0, 1),
            "items": [3, 3, 3, 3, 2, 1, 1],
        },
    )
    await post(
        client,
        patient_2,
        "symptoms",
        {
            "reported_at": at(today - timedelta(days=1), 0, 1),
            "code": "fatigue",
            # Severity 3 (grade 2, S then I): a severe_symptom, high. (A first report of grade 2 was a
            # worsening "from 0" before CLINICAL.md's second revision; it now compares with nothing.)
            "severity": 3,
            "interference": 2,
        },
    )
    await client.post(
        f"/v1/patients/{patient_2.patient_id}/check-ins",
        headers=patient_2.headers,
        json={
            "id": "00000000-0000-4000-8000-0000000000aa",
            "date": (today - timedelta(days=1)).isoformat(),
            "submitted_at": at(today - timedelta(days=1), 0, 30),
            "red_flags": {"seizure": True},
        },
    )
    await _scenario(client, world)

    page = (await client.get("/v1/panel", headers=world["admin_a"].headers)).json()
    assert page["next_cursor"] is None
    rows = page["items"]
    assert [r["patient_id"] for r in rows] == [str(patient_2.patient_id), str(world["patient_a"].patient_id)]
    first = rows[0]
    assert first["open_flags"]["urgent"] == 1 and first["open_flags"]["high"] >= 1
    assert first["adherence_7d"] == round(100 * 5 / 7, 1)
    assert first["gad7_last_band"] == "severe" and first["worst_grade_7d"] == 2
    assert first["last_check_in"] == (today - timedelta(days=1)).isoformat()
    assert first["name"] == "Patient A2"
    second = rows[1]
    assert second["last_check_in"] == "2026-03-09" and second["worst_grade_7d"] is None
    provider = (await client.get("/v1/panel", headers=world["provider_a"].headers)).json()["items"]
    assert [r["patient_id"] for r in provider] == [str(world["patient_a"].patient_id)]
    assert (await client.get("/v1/panel", headers=world["patient_a"].headers)).status_code == 403


async def _more_patients(app: FastAPI, world: World, names: list[str]) -> list[Person]:
    """Patients of organization A (admin_a sees them all), signed in, made straight through the services."""
    people = []
    async with session_scope(app.state.session_factory) as session:
        for name in names:
            record = await accounts.create_patient(
                session,
                organization_id=world.organizations["A"],
                email=f"{name.lower().replace(' ', '.')}@a.example",
                name=name,
                timezone="America/New_York",
            )
            pair = await start_session(session, app.state.settings, record.user_id, utcnow())
            people.append(Person(name, record.user_id, Role.patient, pair.access_token, "", record.id))
    return people


async def _urgent_flag(client: httpx.AsyncClient, person: Person) -> None:
    today = datetime.now(NEW_YORK).date()
    answer = await post(
        client,
        person,
        "check-ins",
        {
            "date": today.isoformat(),
            "submitted_at": datetime.now(UTC).isoformat(),
            "red_flags": {"seizure": True},
        },
    )
    assert [flag["severity"] for flag in answer["flags"]] == ["urgent"]


async def _walk(client: httpx.AsyncClient, headers: dict[str, str], limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/panel", headers=headers, params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


async def test_panel_pages_give_each_patient_once_in_order_while_entries_arrive(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    admin = world["admin_a"].headers
    extra = await _more_patients(app, world, [f"Panel {n}" for n in range(5)])  # 7 patients in all
    await _urgent_flag(client, extra[3])
    await post(
        client,
        extra[1],
        "symptoms",
        {"reported_at": datetime.now(UTC).isoformat(), "code": "dizziness", "severity": 3, "interference": 1},
    )
    whole = (await client.get("/v1/panel?limit=500", headers=admin)).json()
    order = [row["patient_id"] for row in whole["items"]]
    assert whole["next_cursor"] is None and len(order) == 7 and set(whole["items"][0]) == PANEL_FIELDS
    # Most urgent first, then by name.
    assert order[:2] == [str(extra[3].patient_id), str(extra[1].patient_id)]
    assert [row["name"] for row in whole["items"][2:]] == [
        "Panel 0",
        "Panel 2",
        "Panel 4",
        "Patient A",
        "Patient A2",
    ]

    # Without writes in between, pages of 2 join up to the whole list.
    assert [row["patient_id"] for page in await _walk(client, admin, 2) for row in page] == order

    # Entries written between page requests, one of them raising an urgent flag for a patient not yet
    # shown (a live order would move them before the cursor, and the walk would skip them).
    first = await client.get("/v1/panel?limit=3", headers=admin)
    seen = [row["patient_id"] for row in first.json()["items"]]
    await _urgent_flag(client, extra[4])
    await post(client, extra[0], "doses", {"taken_at": datetime.now(UTC).isoformat(), "dose_mg": 300})
    second = await client.get(f"/v1/panel?limit=3&cursor={first.json()['next_cursor']}", headers=admin)
    await _urgent_flag(client, world["patient_a2"])
    third = await client.get(f"/v1/panel?limit=3&cursor={second.json()['next_cursor']}", headers=admin)
    assert third.json()["next_cursor"] is None
    later = second.json()["items"] + third.json()["items"]
    assert seen + [row["patient_id"] for row in later] == order
    # The rows show the flags open now, the new urgent ones included.
    flagged = {row["patient_id"]: row["open_flags"]["urgent"] for row in later}
    assert flagged[str(extra[4].patient_id)] == 1 and flagged[str(world["patient_a2"].patient_id)] == 1
    # A fresh walk puts them where they now belong.
    fresh = [row["patient_id"] for page in await _walk(client, admin, 3) for row in page]
    assert fresh[:3] == sorted(fresh[:3], key=lambda i: order.index(i)) and set(fresh[:3]) == {
        str(extra[3].patient_id),
        str(extra[4].patient_id),
        str(world["patient_a2"].patient_id),
    }


@pytest.mark.one_database  # limits and cursors are checked before any query
async def test_panel_limits_and_cursors(client: httpx.AsyncClient, world: World) -> None:
    admin = world["admin_a"].headers
    for limit in (1, 500):
        assert (await client.get(f"/v1/panel?limit={limit}", headers=admin)).status_code == 200
    one = (await client.get("/v1/panel?limit=1", headers=admin)).json()
    assert len(one["items"]) == 1 and one["next_cursor"]
    for bad in ("limit=0", "limit=501", "limit=-1", "cursor=nope", f"cursor={one['next_cursor'][:-3]}"):
        response = await client.get(f"/v1/panel?{bad}", headers=admin)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["loc"][-1] in ("limit", "cursor")
    forged = b64_json_encode(
        {"as_of": "2026-01-01T00:00:00+00:00", "open": [-1, 0, 0], "id": str(uuid.uuid4())}
    )
    assert (await client.get(f"/v1/panel?cursor={forged}", headers=admin)).status_code == 422
    # The flags list's cursors are not the panel's.
    assert (
        await client.get(
            f"/v1/panel?cursor={b64_json_encode({'rank': 1, 'id': str(uuid.uuid4())})}", headers=admin
        )
    ).status_code == 422


async def test_csv_export_has_one_row_per_entry(client: httpx.AsyncClient, world: World) -> None:
    await _scenario(client, world)
    response = await client.get(
        f"/v1/patients/{world['patient_a'].patient_id}/export.csv?from=2026-03-07&to=2026-03-10",
        headers=world["provider_a"].headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    kinds = [r["entry_type"] for r in rows]
    # 2 check-ins, 8 doses in the window (one entered in error), 3 GAD-7 + 3 ratings, 4 symptom reports.
    assert (kinds.count("check_in"), kinds.count("dose"), kinds.count("anxiety"), kinds.count("symptom")) == (
        2,
        8,
        6,
        4,
    )
    assert list(rows[0]) == [
        "entry_type",
        "id",
        "local_date",
        "occurred_at",
        "check_in_id",
        "entered_in_error",
        "medication",
        "dose_mg",
        "status",
        "scheduled_for",
        "instrument",
        "gad7_items",
        "gad7_total",
        "gad7_band",
        "rating",
        "symptom_code",
        "frequency",
        "severity",
        "interference",
        "present",
        "grade",
        "red_flags",
        "note",
    ]
    errors = [r for r in rows if r["entered_in_error"] == "true"]
    assert {r["entry_type"] for r in errors} == {"dose", "anxiety"}
    nausea = next(r for r in rows if r["symptom_code"] == "nausea")
    assert nausea["note"] == "'=SUM(A1)" and nausea["grade"] == "2"  # a formula stays text in spreadsheets
    dose = next(r for r in rows if r["entry_type"] == "dose" and r["occurred_at"] == "2026-03-08T11:20:00Z")
    assert (dose["local_date"], dose["dose_mg"], dose["medication"]) == ("2026-03-08", "300", "gabapentin")
    assert (
        await client.get(
            f"/v1/patients/{world['patient_a'].patient_id}/export.csv", headers=world["patient_a"].headers
        )
    ).status_code == 200  # right of access: their own record (tests/test_own_record.py)


async def test_fhir_bundle_validates_and_carries_the_codes(client: httpx.AsyncClient, world: World) -> None:
    await _scenario(client, world)
    response = await client.get(
        f"/v1/patients/{world['patient_a'].patient_id}/fhir?from=2026-03-07&to=2026-03-10",
        headers=world["provider_a"].headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    document = json.loads(response.content)
    bundle = Bundle.model_validate(document)  # the R4B models accept the whole Bundle
    assert bundle.type == "collection"
    resources = [entry["resource"] for entry in document["entry"]]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert len(by_type["Patient"]) == 1 and by_type["Patient"][0]["id"] == str(world["patient_a"].patient_id)
    assert len(by_type["MedicationRequest"]) == 2
    assert by_type["MedicationRequest"][0]["medicationCodeableConcept"]["coding"][0]["code"] == "25480"
    assert len(by_type["MedicationAdministration"]) == 8
    statuses = sorted(a["status"] for a in by_type["MedicationAdministration"])
    assert statuses.count("not-done") == 1 and statuses.count("entered-in-error") == 1
    observations = by_type["Observation"]
    gad7 = [o for o in observations if o["code"]["coding"][0]["code"] == "70274-6"]
    assert len(gad7) == 3 and gad7[0]["valueInteger"] == 12
    assert [c["code"]["coding"][0]["code"] for c in gad7[0]["component"]] == [
        "69725-0",
        "68509-9",
        "69733-4",
        "69734-2",
        "69735-9",
        "69689-8",
        "69736-7",
    ]
    assert gad7[0]["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "LA6570-1"  # 2
    dizziness = [o for o in observations if o["code"]["coding"][0].get("code") == "404640003"]
    assert len(dizziness) == 3 and dizziness[0]["code"]["coding"][0]["system"] == "http://snomed.info/sct"
    ratings = [o for o in observations if o["code"]["coding"][0]["code"] == "anxiety-rating"]
    assert [o["valueInteger"] for o in ratings] == [6, 4, 5]
    assert sorted(f["code"]["coding"][0]["code"] for f in by_type["Flag"]) == [
        "anxiety_severe",
        "severe_symptom",
    ]


def test_adherence_counts_only_the_times_that_have_come_across_a_dst_change() -> None:
    """Today (03-08, spring forward in New York): 02:30 does not exist and rings at 03:30 EDT, which has
    not come at 03:10 EDT; 00:30 has (taken). Yesterday under the old regimen: both doses due, one taken 40
    minutes late (on time), one 90 minutes late (not). Tomorrow: nothing is due yet."""
    from datetime import time as wall

    from services.localtime import local_instant
    from services.reports.summaries import Schedule, adherence

    zone = "America/New_York"
    old = Schedule(date(2026, 3, 1), date(2026, 3, 7), (wall(8, 0), wall(20, 0)))
    new = Schedule(date(2026, 3, 8), None, (wall(0, 30), wall(2, 30), wall(12, 0)))

    def moment(day: int, hour: int, minute: int) -> datetime:
        # As in production, in UTC: datetimes of one zone compare by their wall clocks.
        return local_instant(date(2026, 3, day), wall(hour, minute), zone).astimezone(UTC)

    now = moment(8, 3, 10)
    days = [date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    taken = {date(2026, 3, 7): [moment(7, 8, 40), moment(7, 21, 30)], date(2026, 3, 8): [moment(8, 0, 35)]}
    counts = {day: (len(instants), 300.0 * len(instants)) for day, instants in taken.items()}
    result = adherence([old, new], days, zone, now, counts, taken)
    # 03-06: 2 due, 0 taken; 03-07: 2 due, 2 taken, 1 on time; 03-08: 1 due (00:30), taken on time.
    assert (result.scheduled, result.taken) == (5, 3)
    assert (result.percent, result.on_time_percent) == (60.0, 40.0)
    # An hour later (04:10 EDT) the 02:30 dose (rung at 03:30) is inside its 60-minute window: not yet
    # missed; at 04:40 its window has closed and it is.
    later = adherence([old, new], days, zone, now + timedelta(hours=1), counts, taken)
    assert (later.scheduled, later.taken) == (5, 3)
    closed = adherence([old, new], days, zone, now + timedelta(minutes=90), counts, taken)
    assert (closed.scheduled, closed.taken) == (6, 3)


async def test_exports_read_a_bounded_page_per_query_and_say_the_same(
    app: FastAPI, client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long window is read a page of PAGE rows per query (keyset), so memory stays flat whatever the
    span; paging changes nothing in what is sent."""
    from sqlalchemy import event

    from services.reports import exports

    await _scenario(client, world)
    base = f"/v1/patients/{world['patient_a'].patient_id}"
    window = "?from=2026-03-07&to=2026-03-10"
    headers = world["provider_a"].headers
    whole_csv = await client.get(f"{base}/export.csv{window}", headers=headers)
    whole_fhir = await client.get(f"{base}/fhir{window}", headers=headers)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    monkeypatch.setattr(exports, "PAGE", 3)
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", seen)
    try:
        paged_csv = await client.get(f"{base}/export.csv{window}", headers=headers)
        dose_pages = [s for s in statements if "ORDER BY dose.taken_at" in s]
        statements.clear()
        paged_fhir = await client.get(f"{base}/fhir{window}", headers=headers)
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", seen)
    assert paged_csv.status_code == paged_fhir.status_code == 200
    assert paged_csv.text == whole_csv.text
    # 8 doses in the window, 3 a page: 3, 3, 2 rows, each page its own bounded query.
    assert len(dose_pages) == 3 and all("LIMIT" in s for s in dose_pages)
    assert len([s for s in statements if "ORDER BY dose.taken_at" in s]) == 3
    paged, whole = json.loads(paged_fhir.content), json.loads(whole_fhir.content)
    Bundle.model_validate(paged)
    assert paged["entry"] == whole["entry"] and paged["type"] == "collection"
