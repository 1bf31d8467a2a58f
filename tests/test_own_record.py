"""A patient downloads their own CSV and FHIR record (right of access), scoped to themself only and
audited like the staff exports (issue 25, 7e)."""

from __future__ import annotations

import csv
import io
import json

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from models.audit import AuditEvent
from services.database import session_scope
from tests.entry_helpers import dose
from tests.test_problems import assert_problem
from tests.world import World


async def test_a_patient_downloads_their_own_record_only(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    mine, other = world["patient_a"], world["patient_a2"]
    for person in (mine, other):
        answer = await client.post(
            f"/v1/patients/{person.patient_id}/doses", headers=person.headers, json=dose()
        )
        assert answer.status_code == 201
    own_dose = (await client.get("/v1/patients/me/doses", headers=mine.headers)).json()["items"][0]["id"]

    for ref in ("me", str(mine.patient_id)):
        exported = await client.get(f"/v1/patients/{ref}/export.csv", headers=mine.headers)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [r["id"] for r in rows] == [own_dose]
        fhir = await client.get(f"/v1/patients/{ref}/fhir", headers=mine.headers)
        assert fhir.status_code == 200
        resources = [e["resource"] for e in json.loads(fhir.content)["entry"]]
        assert {r["id"] for r in resources if r["resourceType"] == "Patient"} == {str(mine.patient_id)}
        assert [r["id"] for r in resources if r["resourceType"] == "MedicationAdministration"] == [own_dose]

    # Another patient's record, even of the same organization and care team's clinic: as if it did not exist.
    for suffix in ("export.csv", "fhir"):
        refused = await client.get(f"/v1/patients/{other.patient_id}/{suffix}", headers=mine.headers)
        assert_problem(refused, 404)
        assert str(other.patient_id) not in refused.text

    async with session_scope(app.state.session_factory) as session:
        events = (
            await session.execute(
                select(AuditEvent).where(
                    AuditEvent.actor_user_id == mine.user_id, AuditEvent.action.like("GET %")
                )
            )
        ).scalars()
        trail = sorted((e.action, e.outcome, str(e.patient_id)) for e in events)
    for suffix in ("export.csv", "fhir"):
        action = f"GET /v1/patients/{{patient_id}}/{suffix}"
        assert trail.count((action, "success", str(mine.patient_id))) == 2
        assert (action, "denied", str(other.patient_id)) in trail
