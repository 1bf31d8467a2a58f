"""Every text cell of the CSV export is neutralized the one way (OWASP CSV injection): a cell that
starts with =, +, -, @, tab or carriage return gets a leading single quote, in every column (issue 25, 2)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime

import httpx
import pytest

from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from services.reports.exports import CSV_COLUMNS, _cells, _csv_row
from tests.entry_helpers import dose, symptom
from tests.world import World

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1"]
NOW = datetime(2026, 3, 8, 12, tzinfo=UTC)


def _rows_with(text: str) -> list[tuple[str, object]]:
    """A row of each kind whose every text field holds `text` (as if validation had let it through)."""
    common = {
        "id": uuid.uuid4(),
        "patient_id": uuid.uuid4(),
        "local_date": date(2026, 3, 8),
        "content_hash": text,
    }
    return [
        ("dose", Dose(**common, taken_at=NOW, medication=text, dose_mg=300, status=text, note=text)),
        ("anxiety", AnxietyScore(**common, recorded_at=NOW, instrument=text, band=text, items=[1, 2])),
        ("symptom", SymptomReport(**common, reported_at=NOW, code=text, note=text, grade=1)),
        ("check_in", CheckIn(**common, submitted_at=NOW, red_flags={}, note=text)),
    ]


@pytest.mark.parametrize("text", FORMULAS)
def test_every_text_column_is_neutralized(text: str) -> None:
    columns_seen: set[str] = set()
    for kind, row in _rows_with(text):
        cells = _cells(_csv_row(kind, row))
        for column in CSV_COLUMNS:
            value = cells.get(column, "")
            if isinstance(value, str) and value:
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (kind, column, value)
                if text in value:
                    assert value == "'" + text, (kind, column, value)
                    columns_seen.add(column)
    # The columns a crafted value can reach: each one was checked.
    assert {"medication", "status", "note", "instrument", "gad7_band"} <= columns_seen


def test_plain_text_and_numbers_are_left_alone() -> None:
    assert _cells({"a": "gabapentin", "b": 300, "c": "", "d": "2026-03-08"}) == {
        "a": "gabapentin",
        "b": 300,
        "c": "",
        "d": "2026-03-08",
    }


async def test_a_crafted_medication_reaches_the_export_as_text(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    for text in FORMULAS[:4]:
        answer = await client.post(
            f"/v1/patients/{patient.patient_id}/doses",
            headers=patient.headers,
            json=dose(medication=text, note=text),
        )
        assert answer.status_code == 201, answer.text
    answer = await client.post(
        f"/v1/patients/{patient.patient_id}/symptoms",
        headers=patient.headers,
        json=symptom("nausea", frequency=1, severity=1, note="@cmd"),
    )
    assert answer.status_code == 201, answer.text
    response = await client.get(
        f"/v1/patients/{patient.patient_id}/export.csv", headers=world["provider_a"].headers
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    medications = sorted(r["medication"] for r in rows if r["entry_type"] == "dose")
    assert medications == sorted("'" + text for text in FORMULAS[:4])
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (column, value)
    assert "'@cmd" in {r["note"] for r in rows if r["entry_type"] == "symptom"}
