"""Metric labels and audit actions come from the matched route's own template, never from the raw path,
so no caller can grow /metrics or put a path's text (an email) into the audit trail (issue 25, 1)."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import event, select

from models.audit import AuditEvent
from services.database import session_scope
from services.platform.metrics import read_gauges
from tests.flag_helpers import check_in, day
from tests.world import World

_LABEL = re.compile(r'symptrack_http_requests_total\{method="[A-Z0-9]+",route="([^"]*)",status="\d+"\}')


def _routes(text: str) -> set[str]:
    return set(_LABEL.findall(text))


def _api_routes(app: FastAPI) -> list[APIRoute]:
    found: list[object] = []
    for route in app.router.routes:
        included = getattr(route, "original_router", None)
        found.extend(included.routes if included is not None else [route])
    return [r for r in found if isinstance(r, APIRoute)]


async def test_crafted_paths_add_no_label_and_no_audit_action(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    before = _routes((await client.get("/metrics")).text)
    crafted = [
        (patient, f"/v1/patients/me/doses/me{uuid.uuid4().hex}"),
        (patient, f"/v1/patients/me/doses/me{uuid.uuid4().hex}"),
        (provider, f"/v1/patients/{patient.patient_id}/doses/{patient.patient_id}{uuid.uuid4().hex[:6]}"),
        (provider, "/v1/patients/someone@example.org/doses/someone@example.org.x"),
        (patient, "/v1/patients/a/doses/a" + uuid.uuid4().hex),
    ]
    for person, path in crafted:
        answer = await client.delete(path, headers=person.headers)
        assert answer.status_code in (404, 422), (path, answer.status_code)
    for index in range(5):  # unmatched paths: one label, whatever they are
        await client.get(f"/no/such/{uuid.uuid4().hex}/{index}")
        await client.request(f"X{uuid.uuid4().hex[:8].upper()}", "/v1/me")  # made-up methods: one label
    after = _routes((await client.get("/metrics")).text)
    added = after - before
    templates = {r.path_format for r in _api_routes(app)} | {"unmatched"}
    assert added <= templates, added - templates
    assert "/v1/patients/{patient_id}/doses/{entry_id}" in after and "unmatched" in after
    methods = set(
        re.findall(r'symptrack_http_requests_total\{method="([^"]*)"', (await client.get("/metrics")).text)
    )
    # The counters live in the process (other tests' requests count too): standard methods and OTHER only.
    standard = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
    assert "OTHER" in methods and methods <= standard | {"OTHER"}, methods
    async with session_scope(app.state.session_factory) as session:
        actions = set((await session.execute(select(AuditEvent.action))).scalars())
    assert "DELETE /v1/patients/{patient_id}/doses/{entry_id}" in actions
    for action in actions:
        assert "@" not in action and "{patient_id}a" not in action and "}me" not in action, action
        method, _, template = action.partition(" ")
        assert method.isupper() and (template.startswith("/v1/") or template == "unmatched"), action


def test_every_route_carries_its_whole_path(app: FastAPI) -> None:
    """The labels rely on each route's `path_format` being its whole path: routers carry their
    prefix themselves and are included without one, so what /openapi.json lists is what we label."""
    paths = set(app.openapi()["paths"])
    for route in _api_routes(app):
        if route.include_in_schema:
            assert route.path_format in paths, route.path_format


async def test_a_scrape_reads_a_bounded_number_of_rows(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Every statement a scrape runs is limited (read through an index, at most CAP rows per status),
    so its cost does not grow with the flags and deliveries tables; resolved flags are not counted."""
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    flag_id = (await client.get("/v1/flags", headers=world["provider_a"].headers)).json()["items"][0]["id"]
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(" ".join(statement.split()).upper())

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        text = (await client.get("/metrics")).text
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    selects = [s for s in statements if s.startswith("SELECT") and ("FLAG" in s or "WEBHOOK_DELIVERY" in s)]
    assert selects, statements
    for statement in selects:
        assert "LIMIT" in statement, statement
    assert 'symptrack_flags{rule="seizure",severity="urgent",status="open"} 1' in text
    headers = world["provider_a"].headers
    resolved = await client.post(f"/v1/flags/{flag_id}/resolve", headers=headers, json={"note": "ok"})
    assert resolved.is_success
    text = (await client.get("/metrics")).text
    assert 'status="resolved"' not in text and 'rule="seizure"' not in text


async def test_counts_saturate_at_the_cap(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    for index in range(3):
        await check_in(client, world["patient_a"], day(index), red_flags={"seizure": True})
        await check_in(client, world["patient_b"], day(index), red_flags={"seizure": True})
    async with session_scope(app.state.session_factory) as session:
        assert sum(c for *_, c in (await read_gauges(session)).flags) == 2
        capped = await read_gauges(session, cap=1)
    assert [c for *_, c in capped.flags] == [1]
