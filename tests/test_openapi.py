"""The OpenAPI document generated clients are built from: every operation has a stable snake_case id
that names its action, every status its schema, and the exports their own media types."""

from __future__ import annotations

import re

from fhir.resources.R4B.bundle import Bundle

from api.app import create_app
from api.openapi import OPERATION_IDS
from services.reports.exports import CSV_COLUMNS
from tests.databases import settings_for


def _operations() -> dict[tuple[str, str], str]:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))  # never started: no database
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    }


def test_every_operation_has_its_own_stable_snake_case_id() -> None:
    operations = _operations()
    assert set(operations) == set(OPERATION_IDS), "a route without an id in api/openapi.py, or a stale one"
    ids = list(operations.values())
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", i) for i in ids), ids
    assert operations[("POST", "/v1/patients/{patient_id}/doses")] == "record_dose"
    assert operations[("GET", "/v1/flags")] == "list_flags"
    assert operations[("GET", "/v1/patients/{patient_id}/summary")] == "get_patient_summary"


def test_every_status_an_operation_can_answer_is_documented_with_its_schema() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))
    paths = app.openapi()["paths"]
    dose = paths["/v1/patients/{patient_id}/doses"]["post"]["responses"]
    # A retry's 200 parses as the same model as the 201.
    assert dose["200"]["content"] == dose["201"]["content"]
    for status in ("401", "404", "409", "413", "422", "429", "503"):
        assert dose[status]["content"]["application/problem+json"], status
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation["responses"]
            if "requestBody" in operation:
                assert "413" in responses, (method, path)
            if path.startswith("/v1/") and path != "/v1/catalog":
                assert {"429", "503"} <= set(responses), (method, path)


def test_the_exports_are_typed_by_their_own_media_types() -> None:
    document = create_app(settings_for("sqlite+aiosqlite:///:memory:")).openapi()
    paths, schemas = document["paths"], document["components"]["schemas"]

    csv_answer = paths["/v1/patients/{patient_id}/export.csv"]["get"]["responses"]["200"]["content"]
    assert set(csv_answer) == {"text/csv"}  # never JSON
    csv_schema = csv_answer["text/csv"]["schema"]
    assert csv_schema["type"] == "string" and csv_schema["description"]
    assert csv_schema["examples"][0].split("\r\n")[0] == ",".join(CSV_COLUMNS)

    fhir_answer = paths["/v1/patients/{patient_id}/fhir"]["get"]["responses"]["200"]["content"]
    assert set(fhir_answer) == {"application/fhir+json"}
    bundle = schemas[fhir_answer["application/fhir+json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert bundle["type"] == "object" and bundle["description"]
    assert bundle["properties"]["resourceType"]["const"] == "Bundle"
    assert bundle["properties"]["type"]["const"] == "collection"
    assert bundle["properties"]["entry"]["type"] == "array"
    assert {"resourceType", "type", "entry"} <= set(bundle["required"])
    # The example is a real FHIR R4 Bundle, as the export's own are.
    for example in bundle["examples"]:
        assert Bundle.model_validate(example).type == "collection"
