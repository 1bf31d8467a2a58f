"""Every attribute combination of every CLINICAL.md grade table, graded through the HTTP API.

The expected grades come from the independent transcription in tests/test_clinical_grading.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from tests.entry_helpers import symptom
from tests.test_clinical_grading import (
    EXPECTED_F_S_I,
    EXPECTED_F_THEN_S,
    EXPECTED_FREQUENCY_ONLY,
    EXPECTED_PRESENCE,
    EXPECTED_S_THEN_I,
    EXPECTED_SEVERITY_ONLY,
)
from tests.world import World

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database

# One catalog term for each table shape (no catalog term has the F-then-I shape).
SHAPES: list[tuple[str, tuple[str, ...], dict[tuple[int, ...], int | None]]] = [
    ("limb_swelling", ("frequency", "severity", "interference"), EXPECTED_F_S_I),
    ("nausea", ("frequency", "severity"), EXPECTED_F_THEN_S),
    ("dizziness", ("severity", "interference"), EXPECTED_S_THEN_I),
    ("diarrhea", ("frequency",), EXPECTED_FREQUENCY_ONLY),
    ("dry_mouth", ("severity",), EXPECTED_SEVERITY_ONLY),
    ("rash", ("present",), EXPECTED_PRESENCE),
]


async def test_every_combination_gets_its_table_grade(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    checked = 0
    for code, attributes, expected in SHAPES:
        for scores, grade in expected.items():
            body: dict[str, Any] = symptom(code, **dict(zip(attributes, scores, strict=True)))
            response = await client.post(
                f"/v1/patients/{patient.patient_id}/symptoms", headers=patient.headers, json=body
            )
            assert response.status_code == 201, (code, scores, response.text)
            assert response.json()["grade"] == grade, (code, scores)
            checked += 1
    assert checked == 101 + 21 + 21 + 5 + 5 + 2


async def test_later_attributes_after_a_first_of_zero_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    for later in itertools.product(range(5), repeat=2):
        if later == (0, 0):
            continue
        body = symptom("limb_swelling", frequency=0, severity=later[0], interference=later[1])
        response = await client.post(
            f"/v1/patients/{patient.patient_id}/symptoms", headers=patient.headers, json=body
        )
        assert response.status_code == 422, later
