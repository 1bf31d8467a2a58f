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


def _plain_check_in(today: str) -> dict[str, Any]:
    """What a phone sends most evenings: the day's doses (within the prescription), a side effect or two,
    the rating, every red-flag question answered no. No rule fires."""
    return {
        "id": new_id(),
        "date": today,
        "submitted_at": ago(minutes=1),
        "anxiety_rating": 3,
        "doses": [dose(taken_at=ago(minutes=3), dose_mg=300), dose(taken_at=ago(minutes=2), dose_mg=300)],
        "symptoms": [
            {"reported_at": ago(minutes=2), "code": "drowsiness", "severity": 1, "interference": 1},
            {"reported_at": ago(minutes=2), "code": "dizziness", "severity": 1, "interference": 1},
        ],
    }


async def _today(client: httpx.AsyncClient, patient: Any) -> str:
    base = f"/v1/patients/{patient.patient_id}"
    assert (await client.post(f"{base}/doses", headers=patient.headers, json=dose())).status_code == 201
    return str((await client.get(f"{base}/doses", headers=patient.headers)).json()["items"][0]["local_date"])


@pytest.mark.one_database
async def test_a_plain_check_in_is_one_statement_after_its_days_lock(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """BEGIN, the day's lock, one statement, COMMIT: the check-in, its doses, side effects and rating, its
    audit row and everything the write-time rules read around it (services/entries/check_in_statement.py);
    a plain check-in raises nothing, so nothing more is asked. An identical retry inserts nothing and
    answers the same check-in."""
    patient = world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/check-ins"
    today = await _today(client, patient)
    assert (await client.post(path, headers=patient.headers, json=_plain_check_in(today))).status_code == 201
    body = _plain_check_in(today)
    with statements(app) as seen:
        response = await client.post(path, headers=patient.headers, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["flags"] == [] and response.json()["advice"] is None
    assert len(seen) == 2, seen
    assert seen[0].startswith("SELECT count(pg_advisory_xact_lock(k))"), seen
    assert seen[1].startswith("WITH audited AS (INSERT INTO audit_event"), seen
    counts = await _counts(app)
    retried = await client.post(path, headers=patient.headers, json=body)
    assert retried.status_code == 200, retried.text
    assert retried.json()["check_in"] == response.json()["check_in"]
    assert await _counts(app) == counts


@pytest.mark.one_database
async def test_a_check_in_without_doses_is_one_statement(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """No taken dose, no day to lock: BEGIN, the statement, COMMIT."""
    patient = world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/check-ins"
    today = await _today(client, patient)
    body = {**_plain_check_in(today), "doses": []}
    with statements(app) as seen:
        response = await client.post(path, headers=patient.headers, json=body)
    assert response.status_code == 201, response.text
    assert len(seen) == 1, seen


@pytest.mark.one_database
async def test_a_full_check_in_is_one_statement_after_its_days_lock(
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
    # The day's lock, then one statement: the 4 inserts (check-in, doses, symptoms, anxiety), the audit
    # row, and the rules' reads (the check-ins near its day, the symptom reports, the GAD-7 before this
    # one and the treatment baseline, the day's doses with the regimen). Was 10 statements.
    assert len(seen) == 2, seen
    assert seen[0].startswith("SELECT count(pg_advisory_xact_lock(k))"), seen
