"""The shape of the FHIR export, for the OpenAPI document: the route streams the Bundle itself
(services/reports/exports.py), each resource validated there with fhir.resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.config import JsonDict

import models.examples as ex

_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_PATIENT: JsonDict = {
    "resourceType": "Patient",
    "id": ex.PATIENT_ID,
    "identifier": [{"system": "urn:symptrack:codesystem:patient-id", "value": ex.PATIENT_ID}],
    "name": [{"text": "Alex Rivera"}],
    "birthDate": "1984",
}
_ADMINISTRATION: JsonDict = {
    "resourceType": "MedicationAdministration",
    "id": ex.DOSE_ID,
    "status": "completed",
    "medicationCodeableConcept": {
        "coding": [{"system": _RXNORM, "code": "25480", "display": "gabapentin"}],
        "text": "gabapentin",
    },
    "subject": {"reference": f"urn:uuid:{ex.PATIENT_ID}", "type": "Patient"},
    "effectiveDateTime": "2026-05-04T12:05:00Z",
    "dosage": {"dose": {"value": 300.0, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}},
}
_ENTRIES: list[JsonValue] = [
    {"fullUrl": f"urn:uuid:{ex.PATIENT_ID}", "resource": _PATIENT},
    {"fullUrl": f"urn:uuid:{ex.DOSE_ID}", "resource": _ADMINISTRATION},
]


class FhirBundleEntry(BaseModel):
    """One resource of the Bundle, at `urn:uuid:<its id>`: the Patient, a MedicationRequest per regimen, a
    MedicationAdministration per dose, an Observation per GAD-7, rating and side-effect report, a Flag
    per open flag."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ENTRIES[1]]})

    full_url: str = Field(alias="fullUrl")
    resource: dict[str, Any] = Field(description="A FHIR R4 resource; `resourceType` says which")


class FhirBundle(BaseModel):
    """A patient's record over the window as a FHIR R4 Bundle of type collection
    (media type application/fhir+json)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "resourceType": "Bundle",
                    "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "type": "collection",
                    "timestamp": "2026-05-05T09:00:00Z",
                    "entry": _ENTRIES,
                }
            ]
        }
    )

    resource_type: Literal["Bundle"] = Field(alias="resourceType")
    id: str
    type: Literal["collection"]
    timestamp: datetime
    entry: list[FhirBundleEntry]
