"""Patients and providers through the API: creation, listing within scope, changes, the audit trail."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from models.accounts import Patient, User
from models.audit import AuditEvent
from services.database import session_scope
from tests.world import World


async def _count(app: FastAPI, model: type) -> int:
    async with session_scope(app.state.session_factory) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_provider_creates_a_patient_in_their_care(client: httpx.AsyncClient, world: World) -> None:
    provider = world["provider_a"]
    response = await client.post(
        "/v1/patients",
        headers=provider.headers,
        json={
            "email": "Rosa@A.example",
            "name": "Rosa Parks",
            "timezone": "America/Chicago",
            "birth_year": 1980,
            "takes_opioids_or_benzodiazepines": True,
            "has_lung_disease": True,
            "creatinine_clearance_ml_min": 55,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "rosa@a.example"
    # CLINICAL.md 3's respiratory-risk facts: what was sent, and false (unknown) when not sent.
    assert body["has_lung_disease"] is True and body["takes_other_cns_depressants"] is False
    assert body["provider_ids"] == [str(provider.user_id)]
    assert body["creatinine_clearance_ml_min"] == 55 and body["takes_opioids_or_benzodiazepines"] is True
    assert len(body["enrollment_code"].replace("-", "")) == 12
    fetched = await client.get(f"/v1/patients/{body['id']}", headers=provider.headers)
    assert fetched.status_code == 200 and "enrollment_code" not in fetched.json()
    # The colleague outside the care team does not see them; the admin does.
    assert (
        await client.get(f"/v1/patients/{body['id']}", headers=world["provider_a2"].headers)
    ).status_code == 404
    assert (
        await client.get(f"/v1/patients/{body['id']}", headers=world["admin_a"].headers)
    ).status_code == 200


async def test_bad_patient_input_is_422_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    before = (await _count(app, Patient), await _count(app, User))
    cases = [
        ({"email": "x@a.example", "name": "X", "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "not-an-email", "name": "X", "timezone": "UTC"}, "email"),
        (
            {
                "email": "x@a.example",
                "name": "X",
                "timezone": "UTC",
                "provider_ids": [str(world["provider_b"].user_id)],
            },
            "provider_ids",
        ),
        (
            {"email": "x@a.example", "name": "X", "timezone": "UTC", "creatinine_clearance_ml_min": -1},
            "creatinine_clearance_ml_min",
        ),
        ({"email": "x@a.example", "name": "X", "timezone": "UTC", "role": "admin"}, "role"),
    ]
    for body, field in cases:
        response = await client.post("/v1/patients", headers=world["admin_a"].headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert any(field in err["loc"] for err in response.json()["errors"]), response.json()
    assert (await _count(app, Patient), await _count(app, User)) == before


async def test_a_taken_email_is_409(client: httpx.AsyncClient, world: World) -> None:
    body = {"email": "patient_a@a.example", "name": "Twin", "timezone": "UTC"}
    response = await client.post("/v1/patients", headers=world["admin_a"].headers, json=body)
    assert response.status_code == 409


async def test_lists_hold_only_the_callers_patients_and_page(client: httpx.AsyncClient, world: World) -> None:
    def ids(page: dict[str, list[dict[str, str]]]) -> set[str]:
        return {item["id"] for item in page["items"]}

    provider = (await client.get("/v1/patients", headers=world["provider_a"].headers)).json()
    assert ids(provider) == {str(world["patient_a"].patient_id)}
    admin = (await client.get("/v1/patients", headers=world["admin_a"].headers)).json()
    assert ids(admin) == {str(world["patient_a"].patient_id), str(world["patient_a2"].patient_id)}
    other_org = (await client.get("/v1/patients", headers=world["admin_b"].headers)).json()
    assert ids(other_org) == {str(world["patient_b"].patient_id)}

    first = (await client.get("/v1/patients?limit=1", headers=world["admin_a"].headers)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = (
        await client.get(
            f"/v1/patients?limit=1&cursor={first['next_cursor']}", headers=world["admin_a"].headers
        )
    ).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert ids(first) | ids(second) == ids(admin)
    bad = await client.get("/v1/patients?cursor=garbage", headers=world["admin_a"].headers)
    assert bad.status_code == 422
    too_many = await client.get("/v1/patients?limit=501", headers=world["admin_a"].headers)
    assert too_many.status_code == 422


async def test_patient_may_change_only_their_timezone(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    ok = await client.patch("/v1/patients/me", headers=patient.headers, json={"timezone": "Asia/Tokyo"})
    assert ok.status_code == 200 and ok.json()["timezone"] == "Asia/Tokyo"
    for clinical in (
        {"creatinine_clearance_ml_min": 120},
        {"takes_opioids_or_benzodiazepines": False},
        {"takes_other_cns_depressants": True},
        {"has_lung_disease": True},
        {"timezone": "UTC", "has_lung_disease": False},
        {"provider_ids": []},
        {"timezone": "Europe/Paris", "birth_year": 2000},
    ):
        refused = await client.patch("/v1/patients/me", headers=patient.headers, json=clinical)
        assert refused.status_code == 403, (clinical, refused.text)
    invalid = await client.patch(
        "/v1/patients/me", headers=patient.headers, json={"timezone": "Nowhere/City"}
    )
    assert invalid.status_code == 422
    unknown_field = await client.patch(
        "/v1/patients/me", headers=patient.headers, json={"organization_id": "x"}
    )
    assert unknown_field.status_code == 422
    final = (await client.get("/v1/patients/me", headers=patient.headers)).json()
    assert final["timezone"] == "Asia/Tokyo" and final["birth_year"] is None
    assert final["takes_other_cns_depressants"] is False and final["has_lung_disease"] is False
    assert final["provider_ids"] == [str(world["provider_a"].user_id)]


async def test_care_team_changes_clinical_fields(client: httpx.AsyncClient, world: World) -> None:
    path = f"/v1/patients/{world['patient_a'].patient_id}"
    response = await client.patch(
        path,
        headers=world["provider_a"].headers,
        json={
            "creatinine_clearance_ml_min": 45.5,
            "takes_opioids_or_benzodiazepines": True,
            "takes_other_cns_depressants": True,
            "has_lung_disease": True,
            "provider_ids": [str(world["provider_a"].user_id), str(world["provider_a2"].user_id)],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["creatinine_clearance_ml_min"] == 45.5
    assert response.json()["takes_other_cns_depressants"] is True
    assert response.json()["has_lung_disease"] is True
    # A fact set back to no is kept as no; null is refused (a yes/no fact is never unknown once set).
    cleared = await client.patch(path, headers=world["provider_a"].headers, json={"has_lung_disease": False})
    assert cleared.status_code == 200 and cleared.json()["has_lung_disease"] is False
    assert cleared.json()["takes_other_cns_depressants"] is True
    for fact in ("takes_other_cns_depressants", "has_lung_disease"):
        null = await client.patch(path, headers=world["provider_a"].headers, json={fact: None})
        assert null.status_code == 422, (fact, null.text)
    # The colleague just added to the care team now sees the patient.
    assert (await client.get(path, headers=world["provider_a2"].headers)).status_code == 200


async def test_providers_are_created_by_admins_only(client: httpx.AsyncClient, world: World) -> None:
    body = {"email": "new.doc@a.example", "name": "New Doc", "password": "a good password"}
    assert (
        await client.post("/v1/providers", headers=world["provider_a"].headers, json=body)
    ).status_code == 403
    assert (
        await client.post("/v1/providers", headers=world["patient_a"].headers, json=body)
    ).status_code == 403
    created = await client.post("/v1/providers", headers=world["admin_a"].headers, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "provider" and "password" not in created.json()
    assert created.json()["organization_id"] == str(
        (await client.get("/v1/me", headers=world["admin_a"].headers)).json()["organization_id"]
    )
    assert (
        await client.post("/v1/providers", headers=world["admin_a"].headers, json=body)
    ).status_code == 409
    short = {**body, "email": "short@a.example", "password": "short"}
    assert (
        await client.post("/v1/providers", headers=world["admin_a"].headers, json=short)
    ).status_code == 422
    signed_in = await client.post(
        "/v1/auth/token", data={"username": body["email"], "password": body["password"]}
    )
    assert signed_in.status_code == 200
    listed = await client.get("/v1/providers", headers=world["admin_b"].headers)
    assert body["email"] not in listed.text


async def test_every_patient_access_is_audited_with_its_outcome(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient_id = world["patient_a"].patient_id
    await client.get(f"/v1/patients/{patient_id}", headers=world["provider_a"].headers)
    await client.get(f"/v1/patients/{patient_id}", headers=world["provider_b"].headers)
    await client.patch(
        f"/v1/patients/{patient_id}", headers=world["patient_a"].headers, json={"birth_year": 1990}
    )
    await client.patch(
        f"/v1/patients/{patient_id}", headers=world["patient_a"].headers, json={"timezone": "UTC"}
    )
    async with session_scope(app.state.session_factory) as session:
        events = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.patient_id == patient_id)
                    .order_by(AuditEvent.occurred_at)
                )
            )
            .scalars()
            .all()
        )
    seen = [(e.actor_user_id, e.action, e.outcome) for e in events]
    assert seen == [
        (world["provider_a"].user_id, "GET /v1/patients/{patient_id}", "success"),
        (world["provider_b"].user_id, "GET /v1/patients/{patient_id}", "denied"),
        (world["patient_a"].user_id, "PATCH /v1/patients/{patient_id}", "forbidden"),
        (world["patient_a"].user_id, "PATCH /v1/patients/{patient_id}", "success"),
    ]
    assert all(e.occurred_at is not None for e in events)


async def test_unknown_patient_id_is_audited_as_denied(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    ghost = uuid.uuid4()
    assert (await client.get(f"/v1/patients/{ghost}", headers=world["admin_a"].headers)).status_code == 404
    async with session_scope(app.state.session_factory) as session:
        event = (await session.execute(select(AuditEvent).where(AuditEvent.patient_id == ghost))).scalar_one()
    assert event.outcome == "denied" and event.status_code == 404


async def test_creating_and_listing_patients_is_audited(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    created = await client.post(
        "/v1/patients",
        headers=world["provider_a"].headers,
        json={"email": "z@a.example", "name": "Z", "timezone": "UTC"},
    )
    await client.get("/v1/patients", headers=world["provider_a"].headers)
    async with session_scope(app.state.session_factory) as session:
        rows = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.patient_id).where(
                    AuditEvent.actor_user_id == world["provider_a"].user_id
                )
            )
        ).all()
    new_id = uuid.UUID(created.json()["id"])
    assert ("POST /v1/patients", new_id) in rows
    assert {pid for action, pid in rows if action == "GET /v1/patients"} == {
        new_id,
        world["patient_a"].patient_id,
    }


async def test_the_fhir_patient_carries_the_respiratory_risk_facts(
    client: httpx.AsyncClient, world: World
) -> None:
    """CLINICAL.md 3's yes/no facts go out with the Patient resource, as the care team set them."""
    patient, provider = world["patient_a"], world["provider_a"]
    path = f"/v1/patients/{patient.patient_id}"
    changed = await client.patch(
        path, headers=provider.headers, json={"has_lung_disease": True, "birth_year": 1958}
    )
    assert changed.status_code == 200, changed.text
    response = await client.get(f"{path}/fhir", headers=provider.headers)
    assert response.status_code == 200, response.text
    [fhir_patient] = [
        e["resource"] for e in response.json()["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert fhir_patient["birthDate"] == "1958"
    assert {e["url"]: e["valueBoolean"] for e in fhir_patient["extension"]} == {
        "urn:symptrack:extension:patient:takes-opioids-or-benzodiazepines": False,
        "urn:symptrack:extension:patient:takes-other-cns-depressants": False,
        "urn:symptrack:extension:patient:has-lung-disease": True,
    }
