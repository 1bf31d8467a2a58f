"""Malformed and hostile input gets a clear problem and changes nothing; no input gets a 500."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from models.audit import AuditEvent
from services.database import session_scope
from tests.entry_helpers import dose, new_id
from tests.flag_helpers import check_in, day
from tests.test_entries import _counts
from tests.world import World


async def test_sync_survives_malformed_entries(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    taken = dose()
    await client.post(f"/v1/patients/{patient.patient_id}/doses", headers=patient.headers, json=taken)
    good = {"type": "dose", "patient_id": "me", **dose()}
    entries = [
        1,
        "dose",
        {"type": ["dose"], "patient_id": "me", **dose()},
        {"type": {"a": 1}, "patient_id": "me"},
        {"type": "dose", "patient_id": ["me"], **dose()},
        {"type": "dose", "patient_id": "me", **dose(taken_at="0001-01-01T00:00:00+14:00")},
        {"type": "dose", "patient_id": "me", **dose(note="bad \x00 byte")},
        {"type": "dose", "patient_id": "me", **{**dose(), "id": "\ud800"}},
        {
            "type": "check_in",
            "patient_id": "me",
            "id": new_id(),
            "date": day(0).isoformat(),
            "submitted_at": "2026-05-04T22:00:00-04:00",
            "doses": [{**taken, "taken_at": "2026-05-04T08:00:00-04:00"}],
        },
        good,
    ]
    raw = json.dumps({"entries": entries})  # ASCII-escaped: the lone surrogate travels as \ud800
    response = await client.post(
        "/v1/sync", headers={**patient.headers, "content-type": "application/json"}, content=raw
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [422, 422, 422, 422, 422, 422, 422, 422, 409, 201]
    assert results[7]["id"] is None and results[9]["id"] == good["id"]
    assert (await _counts(app))[0] == 2  # the dose stored first, and the good one


async def test_a_check_in_part_cannot_reuse_an_entry_id(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    taken = dose(taken_at="2026-05-04T08:00:00-04:00")
    await client.post(f"/v1/patients/{patient.patient_id}/doses", headers=patient.headers, json=taken)
    body = {
        "id": new_id(),
        "date": "2026-05-04",
        "submitted_at": "2026-05-04T22:00:00-04:00",
        "doses": [taken],
    }
    reused = await client.post(
        f"/v1/patients/{patient.patient_id}/check-ins", headers=patient.headers, json=body
    )
    assert reused.status_code == 409
    twice = {**body, "id": new_id(), "doses": [{**taken, "id": taken["id"][:-1] + "0"}] * 2}
    repeated = await client.post(
        f"/v1/patients/{patient.patient_id}/check-ins", headers=patient.headers, json=twice
    )
    assert repeated.status_code == 422
    assert await _counts(app) == (1, 0, 0, 0)


async def test_a_retried_urgent_check_in_still_carries_its_flags_and_advice(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    body = {
        "id": new_id(),
        "date": "2026-05-04",
        "submitted_at": "2026-05-04T22:00:00-04:00",
        "red_flags": {"breathing_trouble": True},
    }
    path = f"/v1/patients/{patient.patient_id}/check-ins"
    first = await client.post(path, headers=patient.headers, json=body)
    retry = await client.post(path, headers=patient.headers, json=body)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["advice"] == first.json()["advice"] is not None
    assert [f["id"] for f in retry.json()["flags"]] == [f["id"] for f in first.json()["flags"]]


async def test_concurrent_wrong_passwords_cannot_slip_past_the_limit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    from tests.test_auth import PASSWORD, _staff

    await _staff(app, email="target@a.example")
    limit = app.state.settings.login_max_failures_per_account
    answers = await asyncio.gather(
        *(
            client.post("/v1/auth/token", data={"username": "target@a.example", "password": f"guess {i}"})
            for i in range(limit + 5)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * limit + [429] * 5, codes
    ok = await client.post("/v1/auth/token", data={"username": "target@a.example", "password": PASSWORD})
    assert ok.status_code == 429


async def test_a_sign_in_holds_no_database_connection_while_it_hashes(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash takes a tenth of a second of CPU, seconds on a loaded machine: held through it,
    SQLite's write lock queued every writer behind concurrent sign-ins, past the busy timeout (503)."""
    from services.accounts import auth
    from tests.test_auth import PASSWORD, _staff

    await _staff(app, email="target@a.example")
    hashing, go_on = threading.Event(), threading.Event()
    verify = auth.verify_password

    def held_verify(password: str, password_hash: str) -> bool:
        hashing.set()
        go_on.wait(10)
        return verify(password, password_hash)

    monkeypatch.setattr("services.accounts.auth.verify_password", held_verify)
    in_use = app.state.engine.pool.checkedout()  # the PostgreSQL listener holds one of its own
    sign_in = asyncio.create_task(
        client.post("/v1/auth/token", data={"username": "target@a.example", "password": PASSWORD})
    )
    try:
        assert await asyncio.to_thread(hashing.wait, 10)
        assert app.state.engine.pool.checkedout() == in_use
        await _staff(app, email="writer@a.example")  # a write goes through meanwhile
    finally:
        go_on.set()
    assert (await sign_in).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        dose(taken_at="0001-01-01T00:00:00+14:00"),
        dose(taken_at="9999-12-31T23:59:59-14:00"),
        dose(scheduled_for="0001-01-01T00:00:00Z"),
        dose(note="\x00"),
        dose(medication="gaba\x00pentin"),
    ],
)
async def test_out_of_range_instants_and_nul_characters_are_422(
    client: httpx.AsyncClient, world: World, body: dict[str, object]
) -> None:
    patient = world["patient_a"]
    response = await client.post(
        f"/v1/patients/{patient.patient_id}/doses", headers=patient.headers, json=body
    )
    assert response.status_code == 422, response.text


async def test_nul_in_a_sign_in_is_a_plain_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/token", data={"username": "x\x00@y.example", "password": "whatever1"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "../etc/passwd", "", "Mars/Base"])
async def test_only_real_places_are_time_zones(client: httpx.AsyncClient, world: World, zone: str) -> None:
    response = await client.patch(
        "/v1/patients/me", headers=world["patient_a"].headers, json={"timezone": zone}
    )
    assert response.status_code == 422


async def test_infinite_numbers_are_refused(client: httpx.AsyncClient, world: World) -> None:
    path = f"/v1/patients/{world['patient_a'].patient_id}"
    for raw in ('{"creatinine_clearance_ml_min": Infinity}', '{"creatinine_clearance_ml_min": NaN}'):
        response = await client.patch(
            path, headers={**world["provider_a"].headers, "content-type": "application/json"}, content=raw
        )
        assert response.status_code == 422, raw
    regimen = (
        '{"schedule": [{"time": "08:00", "dose_mg": 300}], "start_date": "2026-01-01", '
        '"max_daily_mg": Infinity}'
    )
    response = await client.post(
        f"{path}/regimens",
        headers={**world["provider_a"].headers, "content-type": "application/json"},
        content=regimen,
    )
    assert response.status_code == 422


async def test_a_rejected_body_is_audited_with_its_status(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    response = await client.post(
        f"/v1/patients/{patient.patient_id}/doses", headers=patient.headers, json=dose(dose_mg=-1)
    )
    assert response.status_code == 422
    async with session_scope(app.state.session_factory) as session:
        event = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.action == "POST /v1/patients/{patient_id}/doses")
            )
        ).scalar_one()
    assert (event.outcome, event.status_code) == ("error", 422)


async def test_emptying_a_care_team_with_null_is_refused(client: httpx.AsyncClient, world: World) -> None:
    response = await client.patch(
        f"/v1/patients/{world['patient_a'].patient_id}",
        headers=world["provider_a"].headers,
        json={"provider_ids": None},
    )
    assert response.status_code == 422


async def test_urgent_check_in_flag_answer_helper_still_works(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert answer["flags"][0]["rule"] == "seizure"
