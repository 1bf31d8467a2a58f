"""The OpenAPI document generated clients are built from: every operation has a stable snake_case id
that names its action."""

from __future__ import annotations

import re

from api.app import create_app
from api.openapi import OPERATION_IDS
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
