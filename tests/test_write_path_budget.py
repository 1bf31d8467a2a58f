"""The write path's round trips, counted: each statement is a budget item (ENGINEERING.md, "Hot paths").

Counted on PostgreSQL with an engine event: what one request sends beyond signing in. BEGIN and COMMIT
(asyncpg sends them itself, outside the event) are two more round trips on top of these."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.entry_helpers import ago, dose, new_id
from tests.test_entries import _counts
from tests.world import World

# Signing in and finding the patient in scope are another part's budget.
NOT_OURS = ("user_account", "refresh_token", "token_family", "device_token", "FROM patient")


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not any(name in statement for name in NOT_OURS):
            seen.append(" ".join(statement.split())[:90])

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.mark.one_database
@pytest.mark.parametrize("medication", ["gabapentin", None], ids=["named", "from the regimen"])
async def test_a_plain_dose_is_one_statement(
    app: FastAPI, client: httpx.AsyncClient, world: World, medication: str | None
) -> None:
    """BEGIN, the day's lock, this, COMMIT: four round trips for a dose that raises no flag."""
    patient = world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/doses"
    assert (await client.post(path, headers=patient.headers, json=dose())).status_code == 201  # warm
    body = dose(medication=medication) if medication else dose()
    with statements(app) as seen:
        response = await client.post(path, headers=patient.headers, json=body)
    assert response.status_code == 201, response.text
    # First the lock of the patient's local day (services/flags/dose_day_lock.py), a statement of its
    # own: the next statement's snapshot must start after a concurrent dose of that day has committed,
    # or the day's total misses it (issue 22: doses recorded at the same time are counted together).
    # Then the regimen in force, INSERT ... ON CONFLICT DO NOTHING RETURNING, the audit row and the
    # day's taken doses, as data-modifying CTEs of one statement (services/entries/dose_statement.py).
    assert len(seen) == 2, seen
    assert seen[0].startswith("SELECT count(pg_advisory_xact_lock(k))"), seen
    assert seen[1].startswith("WITH audited AS (INSERT INTO audit_event"), seen
    assert response.json()["medication"] == "gabapentin"


async def test_a_check_in_whose_part_id_another_entry_has_is_409_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    base = f"/v1/patients/{patient.patient_id}"
    alone = dose(taken_at=ago(minutes=2))
    assert (await client.post(f"{base}/doses", headers=patient.headers, json=alone)).status_code == 201
    today = (await client.get(f"{base}/doses", headers=patient.headers)).json()["items"][0]["local_date"]
    body = {
        "id": new_id(),
        "date": today,
        "submitted_at": ago(minutes=1),
        "anxiety_rating": 3,
        "doses": [dose(taken_at=ago(minutes=2)), {**alone, "dose_mg": 100}],
    }
    response = await client.post(f"{base}/check-ins", headers=patient.headers, json=body)
    assert response.status_code == 409, response.text
    assert "doses[1].id" in response.json()["detail"]
    assert await _counts(app) == (1, 0, 0, 0)  # the dose alone; nothing of the check-in


@pytest.mark.one_database
async def test_a_full_check_in_is_one_insert_per_table_and_one_read_per_rule_input(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    base = f"/v1/patients/{patient.patient_id}"
    first = dose(taken_at=ago(minutes=2))
    assert (await client.post(f"{base}/doses", headers=patient.headers, json=first)).status_code == 201
    today = (await client.get(f"{base}/doses", headers=patient.headers)).json()["items"][0]["local_date"]
    body = {
        "id": new_id(),
        "date": today,
        "submitted_at": ago(minutes=1),
        "anxiety_rating": 3,
        "gad7": [1, 1, 1, 1, 1, 1, 1],
        "doses": [dose(taken_at=ago(minutes=2), medication="gabapentin") for _ in range(2)],
        "symptoms": [{"reported_at": ago(minutes=2), "code": "drowsiness", "severity": 1, "interference": 1}],
    }
    with statements(app) as seen:
        response = await client.post(f"{base}/check-ins", headers=patient.headers, json=body)
    assert response.status_code == 201, response.text
    # 4 inserts (check-in, doses, symptoms, anxiety: one each, however many parts); the check-ins
    # near its day, the symptom reports its rules need (one query), the GAD-7 before this one, the
    # day's doses with the regimen; the audit row; and before the day is read, its lock.
    assert len(seen) == 10, seen
    assert sum(s.startswith("INSERT INTO dose") for s in seen) == 1, seen
