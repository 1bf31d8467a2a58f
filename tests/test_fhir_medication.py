"""FHIR codes each regimen and dose by its own medication: the regimen's RxNorm code when it has one,
else text only; never gabapentin's 25480 for another drug (issue 25, 7d)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx
from fhir.resources.R4B.bundle import Bundle

from tests.entry_helpers import dose
from tests.world import World

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _code(resource: dict[str, Any]) -> str | None:
    concept = resource["medicationCodeableConcept"]
    codes = [c["code"] for c in concept.get("coding", []) if c["system"] == RXNORM]
    assert len(codes) <= 1
    return codes[0] if codes else None


async def test_each_medication_is_coded_as_its_regimen_says(client: httpx.AsyncClient, world: World) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    base = f"/v1/patients/{patient.patient_id}"
    start = (date.today() - timedelta(days=3)).isoformat()
    schedule = [{"time": "08:00", "dose_mg": 100}]
    regimens = {
        "gabapentin": {},  # no code given: gabapentin's own
        "sertraline": {},  # no code given: none (it used to be 25480)
        "pregabalin": {"rxnorm": "187832"},
        "hydroxyzine": {"rxnorm": "25480"},  # gabapentin's code on another drug: false, left out
    }
    made = {}
    for medication, fields in regimens.items():
        body = {"medication": medication, "schedule": schedule, "start_date": start, **fields}
        answer = await client.post(f"{base}/regimens", headers=provider.headers, json=body)
        assert answer.status_code == 201, answer.text
        made[medication] = answer.json()["rxnorm"]
    assert made == {"gabapentin": "25480", "sertraline": None, "pregabalin": "187832", "hydroxyzine": "25480"}
    for medication in (*regimens, "melatonin"):  # melatonin: no regimen at all
        answer = await client.post(
            f"{base}/doses", headers=patient.headers, json=dose(medication=medication, dose_mg=100)
        )
        assert answer.status_code == 201, answer.text
    response = await client.get(f"{base}/fhir", headers=provider.headers)
    assert response.status_code == 200
    document = json.loads(response.content)
    Bundle.model_validate(document)
    resources = [entry["resource"] for entry in document["entry"]]
    expected = {"gabapentin": "25480", "sertraline": None, "pregabalin": "187832", "hydroxyzine": None}
    requests = {
        r["medicationCodeableConcept"]["text"]: _code(r)
        for r in resources
        if r["resourceType"] == "MedicationRequest"
    }
    assert requests == expected
    given = {
        r["medicationCodeableConcept"]["text"]: _code(r)
        for r in resources
        if r["resourceType"] == "MedicationAdministration"
    }
    assert given == {**expected, "melatonin": None}
