"""Callers kept in memory: no query to authenticate in the steady state, and still no request served
for a session once it is revoked, in this process or any other."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from api.app import create_app
from models.accounts import Role
from services.accounts.access import Caller
from services.accounts.caller_cache import FAMILY, USER, CallerCache
from services.settings import Settings
from tests.entry_helpers import dose
from tests.test_rate_limits import _serve
from tests.world import World


def _caller(user_id: uuid.UUID | None = None) -> Caller:
    return Caller(
        user_id=user_id or uuid.uuid4(),
        role=Role.patient,
        organization_id=uuid.uuid4(),
        family_id=uuid.uuid4(),
        email="someone@example.org",
        name="Someone",
    )


def test_a_read_that_began_before_an_invalidation_is_not_kept() -> None:
    cache = CallerCache(ttl_seconds=60)
    caller = _caller()
    began = cache.generation
    cache.invalidate(f"{FAMILY}:{caller.family_id}")  # the revocation commits while the read runs
    cache.put(caller, began)
    assert cache.get(caller.family_id, caller.user_id) is None
    cache.put(caller, cache.generation)
    assert cache.get(caller.family_id, caller.user_id) == caller


def test_entries_expire_and_go_by_family_or_by_user(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    cache = CallerCache(ttl_seconds=5)
    first, second, other = _caller(), _caller(), _caller()
    second = Caller(**{**second.__dict__, "user_id": first.user_id})  # another session, same user
    for caller in (first, second, other):
        cache.put(caller, cache.generation)
    assert cache.get(other.family_id, first.user_id) is None  # a family is only its own user's
    cache.put(other, cache.generation)
    cache.invalidate(f"{USER}:{first.user_id}")
    assert cache.get(first.family_id, first.user_id) is None
    assert cache.get(second.family_id, second.user_id) is None
    assert cache.get(other.family_id, other.user_id) == other
    clock[0] += 5
    assert cache.get(other.family_id, other.user_id) is None  # the TTL bounds what a missed notice costs
    cache.put(other, cache.generation)
    cache.invalidate("garbled")
    assert len(cache) == 0
    cache.put(other, cache.generation)
    cache.stop_caching()  # the LISTEN connection was lost
    cache.put(other, cache.generation)
    assert len(cache) == 0


@asynccontextmanager
async def _counted(app: FastAPI) -> AsyncIterator[list[str]]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def test_get_me_asks_the_database_nothing_once_the_caller_is_known(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200
    async with _counted(app) as statements:
        answer = await client.get("/v1/me", headers=patient.headers)
    assert answer.status_code == 200
    assert answer.json()["email"] == "patient_a@a.example"
    assert answer.json()["name"] == "Patient A"
    assert answer.json()["patient_id"] == str(patient.patient_id)
    assert statements == []


async def test_get_me_with_a_known_caller_makes_no_session_and_takes_no_connection(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    headers = world["patient_a"].headers
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    factory, made, checkouts = app.state.session_factory, [], []

    def counted_factory() -> Any:
        made.append(1)
        return factory()

    def checkout(*_args: Any) -> None:
        checkouts.append(1)

    pool = app.state.engine.sync_engine.pool
    app.state.session_factory = counted_factory
    event.listen(pool, "checkout", checkout)
    try:
        assert (await client.get("/v1/me", headers=headers)).status_code == 200
        assert (made, checkouts) == ([], [])
        # A statement to run: one session for the request, one connection.
        assert (await client.post("/v1/patients/me/doses", json=dose(), headers=headers)).status_code == 201
        assert (made, checkouts) == ([1], [1])
    finally:
        event.remove(pool, "checkout", checkout)
        app.state.session_factory = factory


async def _warm_dose_statements(app: FastAPI, world: World) -> list[str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = world["patient_a"].headers
        assert (await client.post("/v1/patients/me/doses", json=dose(), headers=headers)).status_code == 201
        async with _counted(app) as statements:
            answer = await client.post("/v1/patients/me/doses", json=dose(), headers=headers)
        assert answer.status_code == 201
    return statements


async def test_a_dose_for_me_costs_one_statement_less(app: FastAPI, settings: Settings, world: World) -> None:
    cached = await _warm_dose_statements(app, world)
    uncached_app = create_app(settings.model_copy(update={"auth_cache_seconds": 0}))
    async with uncached_app.router.lifespan_context(uncached_app):
        uncached = await _warm_dose_statements(uncached_app, world)
    assert len(cached) == len(uncached) - 1
    assert not any("token_family" in statement for statement in cached)


async def test_a_patient_s_requests_need_no_scope_query_and_see_a_new_timezone_at_once(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """The patient's own records come with the cached caller; a change to them clears it."""
    patient, carer = world["patient_a"], world["provider_a"]
    late_evening = "2026-03-10T23:30:00+00:00"  # 19:30 in New York, already the 11th in Tokyo
    doses = "/v1/patients/me/doses"
    first = await client.post(doses, json=dose(taken_at=late_evening), headers=patient.headers)
    assert first.json()["local_date"] == "2026-03-10"
    async with _counted(app) as statements:
        again = await client.get("/v1/patients/me", headers=patient.headers)
    assert again.json()["timezone"] == "America/New_York"
    assert not any("FROM patient" in statement for statement in statements)

    moved = await client.patch(
        f"/v1/patients/{patient.patient_id}", json={"timezone": "Asia/Tokyo"}, headers=carer.headers
    )
    assert moved.status_code == 200
    assert (await client.get("/v1/patients/me", headers=patient.headers)).json()["timezone"] == "Asia/Tokyo"
    second = await client.post(doses, json=dose(taken_at=late_evening), headers=patient.headers)
    assert second.json()["local_date"] == "2026-03-11"


async def test_logout_ends_a_cached_session_at_once(client: httpx.AsyncClient, world: World) -> None:
    headers = world["provider_a"].headers
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    assert (await client.post("/v1/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/v1/me", headers=headers)).status_code == 401
    assert (await client.get("/v1/patients", headers=headers)).status_code == 401


async def test_a_reused_refresh_token_ends_the_cached_session_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = world["admin_a"]
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": admin.refresh_token})
    fresh = _bearer(rotated.json()["access_token"])
    assert (await client.get("/v1/me", headers=fresh)).status_code == 200
    reused = await client.post("/v1/auth/refresh", json={"refresh_token": admin.refresh_token})
    assert reused.status_code == 401
    assert (await client.get("/v1/me", headers=fresh)).status_code == 401
    assert (await client.get("/v1/me", headers=admin.headers)).status_code == 401


async def test_a_new_name_shows_on_the_next_get_me(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    assert (await client.get("/v1/me", headers=patient.headers)).json()["name"] == "Patient A"
    renamed = await client.patch(
        f"/v1/patients/{patient.patient_id}", json={"name": "Pat Renamed"}, headers=world["admin_a"].headers
    )
    assert renamed.status_code == 200
    assert (await client.get("/v1/me", headers=patient.headers)).json()["name"] == "Pat Renamed"


# --- two API processes on PostgreSQL -------------------------------------------------------------


@pytest.fixture
def two_servers(database_url: str) -> Iterator[list[str]]:
    # A long TTL: only the notification can end a cached session within this test.
    extra = {"SYMPTRACK_AUTH_CACHE_SECONDS": "60", "SYMPTRACK_RATE_LIMIT_PER_TOKEN_PER_MINUTE": "0"}
    started = [_serve(database_url, extra) for _ in range(2)]
    yield [base for _, base in started]
    for process, _ in started:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def _invalidations_heard(base: str) -> int:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("symptrack_auth_cache_invalidations_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no invalidation counter in /metrics")


def _until_heard(base: str, more_than: int) -> None:
    """The precondition, not the proof: the process has heard the revocation's NOTIFY. Its next
    request is then asserted once (the cache would keep the session for 60 s otherwise)."""
    deadline = time.monotonic() + 10
    while _invalidations_heard(base) <= more_than:
        assert time.monotonic() < deadline, "the other process never heard of the revocation"
        time.sleep(0.01)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
@pytest.mark.one_database
async def test_revocations_and_care_teams_hold_across_processes(world: World, two_servers: list[str]) -> None:
    _across_processes(world, *two_servers)


def _across_processes(world: World, a: str, b: str) -> None:
    # A provider taken off a care team through A no longer sees the patient through B, at once:
    # the care team is asked of the database on every request, the cached caller or not.
    carer, patient, admin = world["provider_a"], world["patient_a"], world["admin_a"]
    chart = f"/v1/patients/{patient.patient_id}"
    assert httpx.get(f"{b}{chart}", headers=carer.headers).status_code == 200
    removed = httpx.patch(f"{a}{chart}", json={"provider_ids": []}, headers=admin.headers)
    assert removed.status_code == 200
    assert httpx.get(f"{b}{chart}", headers=carer.headers).status_code == 404

    # A patient's own records, kept with the cached caller in B, change through A: B serves the new
    # ones on the patient's next request.
    assert httpx.get(f"{b}/v1/patients/me", headers=patient.headers).json()["timezone"] == "America/New_York"
    heard = _invalidations_heard(b)
    moved = httpx.patch(f"{a}{chart}", json={"timezone": "Asia/Tokyo"}, headers=admin.headers)
    assert moved.status_code == 200
    _until_heard(b, heard)
    assert httpx.get(f"{b}/v1/patients/me", headers=patient.headers).json()["timezone"] == "Asia/Tokyo"

    # Logout through A: B, which knew the session, refuses its access token on the next request.
    provider = world["provider_a2"]
    assert httpx.get(f"{b}/v1/me", headers=provider.headers).status_code == 200
    heard = _invalidations_heard(b)
    assert httpx.post(f"{a}/v1/auth/logout", headers=provider.headers).status_code == 204
    _until_heard(b, heard)
    assert httpx.get(f"{b}/v1/me", headers=provider.headers).status_code == 401

    # A spent refresh token presented again through A revokes its whole family in B too.
    rotated = httpx.post(f"{a}/v1/auth/refresh", json={"refresh_token": admin.refresh_token})
    assert rotated.status_code == 200
    fresh = _bearer(rotated.json()["access_token"])
    assert httpx.get(f"{b}/v1/me", headers=fresh).status_code == 200
    assert httpx.get(f"{b}/v1/me", headers=admin.headers).status_code == 200
    heard = _invalidations_heard(b)
    reused = httpx.post(f"{a}/v1/auth/refresh", json={"refresh_token": admin.refresh_token})
    assert reused.status_code == 401
    _until_heard(b, heard)
    assert httpx.get(f"{b}/v1/me", headers=fresh).status_code == 401
    assert httpx.get(f"{b}/v1/me", headers=admin.headers).status_code == 401


@pytest.mark.slow
@pytest.mark.one_database
async def test_a_deactivation_through_one_process_ends_the_sessions_another_kept(
    world: World, two_servers: list[str]
) -> None:
    """Issue 25: a token changed in SQL kept working 5 s. Deactivated through A, a user's tokens are
    refused by B, which had them cached for 60 s, as soon as B hears the NOTIFY committed with it."""
    _deactivation_across_processes(world, *two_servers)


def _deactivation_across_processes(world: World, a: str, b: str) -> None:
    admin, patient = world["admin_a"], world["patient_a"]
    chart = f"/v1/patients/{patient.patient_id}"
    for person in (patient, world["provider_a"]):
        assert httpx.get(f"{b}/v1/me", headers=person.headers).status_code == 200
        assert httpx.get(f"{b}{chart}", headers=person.headers).status_code == 200
        heard = _invalidations_heard(b)
        closed = httpx.post(f"{a}/v1/users/{person.user_id}/deactivate", headers=admin.headers)
        assert closed.status_code == 200, closed.text
        answered = time.monotonic()
        _until_heard(b, heard)
        assert time.monotonic() - answered < 2.0, "B heard of the deactivation late (the TTL is 60 s)"
        assert httpx.get(f"{b}/v1/me", headers=person.headers).status_code == 401
        assert httpx.get(f"{b}{chart}", headers=person.headers).status_code == 401
        refreshed = httpx.post(f"{b}/v1/auth/refresh", json={"refresh_token": person.refresh_token})
        assert refreshed.status_code == 401
