"""Limits, headers, request ids, metrics, the audit API and what the logs may hold."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from api.observability import JsonFormatter
from models.entries import Dose
from services.database import session_scope
from tests.entry_helpers import dose
from tests.flag_helpers import check_in, day
from tests.world import World


async def test_bodies_over_1_mib_are_413_and_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    big = json.dumps({**dose(), "note": "x" * (1024 * 1024)})
    declared = await client.post(
        f"/v1/patients/{patient.patient_id}/doses",
        headers={**patient.headers, "content-type": "application/json"},
        content=big,
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["status"] == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it streams
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536].encode()

    streamed = await client.post(
        f"/v1/patients/{patient.patient_id}/doses",
        headers={**patient.headers, "content-type": "application/json"},
        content=chunks(),
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    async with session_scope(app.state.session_factory) as session:
        assert await session.scalar(select(func.count()).select_from(Dose)) == 0


async def test_security_headers_and_request_ids(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/v1/me", headers=world["admin_a"].headers)
    for header in (
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
        "strict-transport-security",
        "cache-control",
    ):
        assert header in response.headers, header
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers["x-request-id"]) == 32
    kept = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = await client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    docs = await client.get("/docs")
    # Swagger UI comes from this server: its page allows this origin only (tests/test_docs.py).
    assert docs.headers["content-security-policy"].startswith("default-src 'self'")


async def test_metrics_report_requests_flags_and_deliveries(client: httpx.AsyncClient, world: World) -> None:
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    await client.get(f"/v1/patients/{world['patient_a'].patient_id}", headers=world["admin_a"].headers)
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'symptrack_http_requests_total{method="GET",route="/v1/patients/{patient_id}",status="200"}' in text
    )
    assert str(world["patient_a"].patient_id) not in text
    assert 'symptrack_flags{rule="seizure",severity="urgent",status="open"} 1' in text
    assert "symptrack_outbox_lag_seconds 0.000" in text
    assert "symptrack_http_request_duration_seconds_bucket" in text


async def test_admins_read_the_audit_trail(client: httpx.AsyncClient, world: World) -> None:
    patient_id = world["patient_a"].patient_id
    await client.get(f"/v1/patients/{patient_id}", headers=world["provider_a"].headers)
    await client.get(f"/v1/patients/{patient_id}", headers=world["provider_b"].headers)
    trail = await client.get(f"/v1/audit?patient_id={patient_id}", headers=world["admin_a"].headers)
    assert trail.status_code == 200
    events = [(e["actor_user_id"], e["outcome"]) for e in trail.json()["items"]]
    assert (str(world["provider_a"].user_id), "success") in events
    assert (str(world["provider_b"].user_id), "denied") in events
    assert (
        await client.get(f"/v1/audit?patient_id={patient_id}", headers=world["provider_a"].headers)
    ).status_code == 403
    assert (
        await client.get(f"/v1/audit?patient_id={patient_id}", headers=world["admin_b"].headers)
    ).status_code == 404
    organization = await client.get("/v1/audit", headers=world["admin_a"].headers)
    assert organization.status_code == 200 and organization.json()["items"]


async def test_each_dose_request_leaves_one_audit_record_with_its_outcome(
    client: httpx.AsyncClient, world: World
) -> None:
    """On PostgreSQL a plain dose's audit row rides in the dose's own statement; it must still be
    there exactly once when the request succeeds, and say "error" when it fails."""
    patient = world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/doses"
    first = dose()
    assert (await client.post(path, json=first, headers=patient.headers)).status_code == 201
    assert (await client.post(path, json=first, headers=patient.headers)).status_code == 200
    changed = {**first, "dose_mg": 100}
    assert (await client.post(path, json=changed, headers=patient.headers)).status_code == 409
    too_late = dose(taken_at="2999-01-01T00:00:00+00:00")
    assert (await client.post(path, json=too_late, headers=patient.headers)).status_code == 422
    trail = await client.get(f"/v1/audit?patient_id={patient.patient_id}", headers=world["admin_a"].headers)
    outcomes = [
        (e["outcome"], e["status_code"])
        for e in trail.json()["items"]
        if e["action"] == "POST /v1/patients/{patient_id}/doses"
    ]
    assert outcomes == [("success", None), ("success", None), ("error", 409), ("error", 422)]


async def test_nothing_personal_reaches_the_logs(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole scenario, every log line formatted as in production, scanned for the patient's details."""
    caplog.set_level(logging.DEBUG)
    secrets_seen: list[str] = [
        "Zelda Quixote-Marchetti",
        "zelda.qm@private.example",
        "my ex-husband came by",
        "hunter2-correct-horse",
    ]
    provider = world["provider_a"]
    created = await client.post(
        "/v1/patients",
        headers=provider.headers,
        json={"email": secrets_seen[1], "name": secrets_seen[0], "timezone": "Europe/Rome"},
    )
    assert created.status_code == 201
    code = created.json()["enrollment_code"]
    enrolled = await client.post(
        "/v1/auth/enroll", json={"enrollment_code": code, "password": secrets_seen[3]}
    )
    tokens = enrolled.json()
    secrets_seen += [code, tokens["access_token"], tokens["refresh_token"]]
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    await client.post("/v1/auth/token", data={"username": secrets_seen[1], "password": "wrong password!"})
    await client.post("/v1/auth/token", data={"username": secrets_seen[1], "password": secrets_seen[3]})
    await client.post("/v1/patients/me/doses", headers=headers, json=dose(note=secrets_seen[2]))
    await client.post("/v1/patients/me/doses", headers=headers, json=dose(dose_mg=-1, note=secrets_seen[2]))
    await client.post(
        "/v1/patients/me/check-ins",
        headers=headers,
        json={
            "id": "00000000-0000-4000-8000-0000000000cc",
            "date": "2026-05-04",
            "submitted_at": "2026-05-04T20:00:00+02:00",
            "red_flags": {"self_harm_thoughts": 2},
            "note": secrets_seen[2],
        },
    )
    await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})  # reuse
    await client.get("/v1/patients/me/export.csv", headers=provider.headers)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"logger": "symptrack.access"' in line for line in lines), "the scenario was logged"
    for line in lines:
        for secret in secrets_seen:
            assert secret not in line, f"{secret!r} leaked into a log line: {line[:200]}"
