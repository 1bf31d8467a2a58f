"""/v1/sync stores a batch set-based: one insert per table, reads only for the ids not inserted, the
rules once per patient. These tests hold what a phone notices: each entry's own result, in order,
duplicates and stolen part ids answered like retries and conflicts, flags raised as one by one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.entry_helpers import dose, new_id
from tests.flag_helpers import at, day
from tests.test_entries import _counts
from tests.test_write_path_budget import statements
from tests.world import World


def _entry(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "patient_id": "me", **body}


async def _sync(client: httpx.AsyncClient, headers: dict[str, str], entries: list[Any]) -> list[int]:
    response = await client.post("/v1/sync", headers=headers, json={"entries": entries})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == [e.get("id") for e in entries]
    return [r["status"] for r in results]


async def test_the_same_id_twice_in_a_batch_is_a_retry_or_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    same, other = dose(), dose()
    entries = [
        _entry("dose", same),
        _entry("dose", same),
        _entry("dose", other),
        _entry("dose", {**other, "dose_mg": 100}),
    ]
    assert await _sync(client, patient.headers, entries) == [201, 200, 201, 409]
    assert (await _counts(app))[0] == 2
    # The whole batch again: every entry a retry, the conflict still one.
    assert await _sync(client, patient.headers, entries) == [200, 200, 200, 409]
    assert (await _counts(app))[0] == 2


async def test_a_check_in_whose_part_id_is_taken_is_409_and_the_rest_is_stored(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    stored = dose(taken_at=at(day(0), 8))
    base = f"/v1/patients/{patient.patient_id}"
    assert (await client.post(f"{base}/doses", headers=patient.headers, json=stored)).status_code == 201
    in_batch = dose(taken_at=at(day(0), 9))

    def check_in(part: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": new_id(),
            "date": day(0).isoformat(),
            "submitted_at": at(day(0), 22),
            "anxiety_rating": 4,
            "doses": [dose(taken_at=at(day(0), 10)), {**part, "dose_mg": 50}],
        }

    entries = [
        _entry("check_in", check_in(stored)),  # its part's id is a stored dose's
        _entry("dose", in_batch),
        _entry("check_in", check_in(in_batch)),  # its part's id is an earlier entry's of the batch
        _entry("check_in", check_in(dose(taken_at=at(day(0), 11)))),
    ]
    assert await _sync(client, patient.headers, entries) == [409, 201, 409, 201]
    # Two doses alone, the good check-in with its two doses and its rating: nothing of the others.
    assert await _counts(app) == (4, 1, 0, 1)


async def test_a_batch_raises_the_flags_its_entries_raise_one_by_one(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    entries = [_entry("dose", dose(taken_at=at(day(0), hour), dose_mg=1200)) for hour in (8, 14, 20, 21)]
    assert await _sync(client, patient.headers, entries) == [201, 201, 201, 201]
    flags = (await client.get("/v1/flags", headers=world["provider_a"].headers)).json()["items"]
    assert [f["rule"] for f in flags] == ["dose_above_max"]
    assert {e["id"] for e in flags[0]["evidence"]} == {e["id"] for e in entries}


@pytest.mark.one_database
async def test_500_doses_take_a_few_statements_not_a_few_per_entry(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    entries = [_entry("dose", dose(taken_at=at(day(n % 5), 8 + n % 12), dose_mg=30)) for n in range(500)]
    with statements(app) as seen:
        assert set(await _sync(client, patient.headers, entries)) == {201}
    # The 5 days' locks in one statement (services/flags/dose_day_lock.py: before any of the days is
    # read, so a dose racing the batch is counted with it), the regimens of the 5 days in one query
    # (no medication given), one multi-row insert, the 5 days taken doses in one query, the audit row.
    assert len(seen) == 5, seen
    assert seen[0].startswith("SELECT count(pg_advisory_xact_lock(k))"), seen
