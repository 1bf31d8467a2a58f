"""Fair shares (api/fair_share.py, issue 25 finding 3): heavy reads and bulk writes run a few at a time
per caller and per process; a caller over their share waits, holding no database connection, then is
answered 429; other callers pass. Summary and report windows are at most 366 days.

A slot is held deterministically: the service behind the route waits for an event the test sets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from starlette.types import Receive, Scope, Send

from api.fair_share import FairShareGate, Slots, is_bulk_write, is_heavy_read
from services.settings import Settings
from tests.databases import settings_for
from tests.entry_helpers import dose
from tests.world import Person, World

SLOW_WAIT = 60.0  # never reached: each test releases the held slot itself


def _settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "heavy_read_slots": 4,
        "heavy_read_slots_per_caller": 1,
        "bulk_write_slots": 8,
        "bulk_write_slots_per_caller": 1,
        "fair_share_wait_seconds": SLOW_WAIT,
    }
    return settings_for(database_url, **(values | overrides))


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    marker = request.node.get_closest_marker("fair_share")
    return _settings(database_url, **(marker.kwargs if marker else {}))


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


class Held:
    """Requests of one caller to one path, held just below the gate (their slots taken, nothing else
    done yet: no session, no transaction, so SQLite's one writer is free) until `release()`."""

    def __init__(self, app: FastAPI, person: Person, path: str, fail: bool = False) -> None:
        self.token = person.headers["Authorization"].encode()
        self.path = path
        self.fail = fail
        self.entered = 0
        self.gate = asyncio.Event()
        app.middleware_stack = app.build_middleware_stack()
        layer: Any = app.middleware_stack
        while not isinstance(layer, FairShareGate):
            layer = layer.app
        below = layer.app

        async def holding(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == self.path and (b"authorization", self.token) in scope["headers"]:
                self.entered += 1
                await self.gate.wait()
                if self.fail:
                    raise RuntimeError("the route failed")
            await below(scope, receive, send)

        layer.app = holding

    def release(self) -> None:
        self.gate.set()


def _hold_reports(app: FastAPI, world: World, who: str = "patient_a", fail: bool = False) -> Held:
    return Held(app, world[who], f"/v1/patients/{world['patient_a'].patient_id}/report", fail)


class Connections:
    """Database connections checked out of the app's engine, now."""

    def __init__(self, app: FastAPI) -> None:
        self.out = 0
        pool = app.state.engine.sync_engine

        def checkout(*_: object) -> None:
            self.out += 1

        def checkin(*_: object) -> None:
            self.out -= 1

        event.listen(pool, "checkout", checkout)
        event.listen(pool, "checkin", checkin)


def _report(world: World, who: str, patient: str) -> tuple[str, dict[str, str]]:
    return f"/v1/patients/{world[patient].patient_id}/report", world[who].headers


def _slots_empty(slots: Slots) -> bool:
    return slots.running == 0 and slots.waiting == 0 and not slots.callers


async def test_a_caller_over_their_share_waits_without_a_connection_while_others_go_through(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    held = _hold_reports(app, world)
    slots: Slots = app.state.heavy_slots
    connections = Connections(app)
    path, headers = _report(world, "patient_a", "patient_a")
    first = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: held.entered == 1)
    in_use = connections.out  # the first report's session
    second = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: slots.waiting == 1)
    # The second waits at the edge: no session, no connection of its own.
    assert connections.out == in_use
    assert held.entered == 1 and not second.done()
    # Meanwhile another patient's summary, and another caller's heavy reads, are answered.
    other = world["patient_a2"]
    summary = await client.get(f"/v1/patients/{other.patient_id}/summary", headers=other.headers)
    assert summary.status_code == 200
    long_summary = f"/v1/patients/{other.patient_id}/summary?from=2026-01-01&to=2026-12-31"
    assert (await client.get(long_summary, headers=other.headers)).status_code == 200
    report_path, report_headers = _report(world, "provider_a2", "patient_a2")
    assert (await client.get(report_path, headers=report_headers)).status_code == 200
    # The same patient's own light summary is not held either.
    own = await client.get(f"/v1/patients/{world['patient_a'].patient_id}/summary", headers=headers)
    assert own.status_code == 200
    assert not second.done()
    held.release()
    assert (await first).status_code == 200
    assert (await second).status_code == 200
    assert held.entered == 2
    assert _slots_empty(slots)


@pytest.mark.fair_share(heavy_read_slots=1, heavy_read_slots_per_caller=2)
async def test_the_process_share_holds_every_caller_but_light_reads_pass(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    held = _hold_reports(app, world)
    slots: Slots = app.state.heavy_slots
    path, headers = _report(world, "patient_a", "patient_a")
    first = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: held.entered == 1)
    other_path, other_headers = _report(world, "provider_a2", "patient_a2")
    other = asyncio.create_task(client.get(other_path, headers=other_headers))
    await _until(lambda: slots.waiting == 1)
    patient = world["patient_a2"]
    summary = await client.get(f"/v1/patients/{patient.patient_id}/summary", headers=patient.headers)
    assert summary.status_code == 200
    assert not other.done()
    held.release()
    assert (await first).status_code == 200
    assert (await other).status_code == 200
    assert _slots_empty(slots)


@pytest.mark.fair_share(fair_share_wait_seconds=0.2)
async def test_a_caller_still_over_their_share_after_the_wait_gets_429(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    held = _hold_reports(app, world)
    slots: Slots = app.state.heavy_slots
    path, headers = _report(world, "patient_a", "patient_a")
    first = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: held.entered == 1)
    # The first holds the caller's one slot until released: the second's wait must run out.
    refused = await client.get(path, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.json()["status"] == 429
    assert held.entered == 1 and slots.waiting == 0 and slots.running == 1
    # Another caller is not refused.
    other_path, other_headers = _report(world, "provider_a2", "patient_a2")
    assert (await client.get(other_path, headers=other_headers)).status_code == 200
    held.release()
    assert (await first).status_code == 200
    assert _slots_empty(slots)
    assert (await client.get(path, headers=headers)).status_code == 200


async def test_the_slot_is_given_back_when_the_route_fails(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    held = _hold_reports(app, world, fail=True)
    slots: Slots = app.state.heavy_slots
    path, headers = _report(world, "patient_a", "patient_a")
    first = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: held.entered == 1)
    second = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: slots.waiting == 1)
    held.release()
    assert (await first).status_code == 500
    assert (await second).status_code == 500  # it had the slot the first one gave back
    assert _slots_empty(slots)
    held.fail = False
    assert (await client.get(path, headers=headers)).status_code == 200


async def test_a_waiting_request_whose_client_left_gives_back_its_place(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    held = _hold_reports(app, world)
    slots: Slots = app.state.heavy_slots
    path, headers = _report(world, "patient_a", "patient_a")
    first = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: held.entered == 1)
    second = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: slots.waiting == 1)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert slots.waiting == 0 and slots.running == 1
    held.release()
    assert (await first).status_code == 200
    assert _slots_empty(slots)


async def _asgi_get(
    app: FastAPI,
    path: str,
    query: str,
    headers: dict[str, str],
    on_body: Callable[[bytes], bool],
    gone: asyncio.Event | None = None,
) -> list[dict[str, Any]]:
    """A GET through the app's ASGI interface whose client goes away once `on_body` says so, or once
    `gone` is set."""
    gone = gone or asyncio.Event()
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and on_body(message.get("body", b"")):
            gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "app": app,
    }
    await asyncio.wait_for(app(scope, receive, send), 30)
    return sent


async def test_a_heavy_read_whose_client_leaves_while_it_waits_leaves_the_queue_at_once(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    held = _hold_reports(app, world)
    slots: Slots = app.state.heavy_slots
    path, headers = _report(world, "patient_a", "patient_a")
    first = asyncio.create_task(client.get(path, headers=headers))
    await _until(lambda: held.entered == 1)
    gone = asyncio.Event()
    second = asyncio.create_task(_asgi_get(app, path, "", headers, lambda _: False, gone))
    await _until(lambda: slots.waiting == 1)
    gone.set()
    sent = await second
    # Gone before its turn: it never ran, and says so to the access log (nginx's 499).
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [499]
    assert held.entered == 1
    assert slots.waiting == 0 and slots.running == 1
    held.release()
    assert (await first).status_code == 200
    assert _slots_empty(slots)


async def _doses(client: httpx.AsyncClient, world: World, count: int, first_day: date) -> None:
    patient = world["patient_a"]
    for n in range(count):
        taken = f"{first_day + timedelta(days=n)}T13:00:00Z"
        answer = await client.post(
            f"/v1/patients/{patient.patient_id}/doses",
            json=dose(taken_at=taken, scheduled_for=taken),
            headers=patient.headers,
        )
        assert answer.status_code == 201, answer.text


async def test_an_export_whose_client_leaves_midway_gives_back_its_slot(
    app: FastAPI, client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.reports import exports

    monkeypatch.setattr(exports, "PAGE", 2)
    await _doses(client, world, 6, date(2026, 3, 1))
    slots: Slots = app.state.heavy_slots
    patient = world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/export.csv"
    # The client leaves after the header line: the rest of the stream is never sent.
    sent = await _asgi_get(
        app,
        path,
        "from=2026-02-01&to=2026-04-01",
        world["provider_a"].headers,
        lambda body: b"entry_type" in body,
    )
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert body.count(b"\r\ndose,") < 6
    assert _slots_empty(slots)
    whole = await client.get(f"{path}?from=2026-02-01&to=2026-04-01", headers=world["provider_a"].headers)
    assert whole.status_code == 200 and whole.text.count("\r\ndose,") == 6


async def test_sync_batches_beyond_a_callers_share_wait_while_another_patients_dose_goes_through(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    # sync(session, settings, caller, entries)
    held = Held(app, patient, "/v1/sync")
    slots: Slots = app.state.bulk_slots

    def batch() -> dict[str, Any]:
        return {"entries": [{"type": "dose", "patient_id": str(patient.patient_id), **dose()}]}

    first = asyncio.create_task(client.post("/v1/sync", json=batch(), headers=patient.headers))
    await _until(lambda: held.entered == 1)
    second = asyncio.create_task(client.post("/v1/sync", json=batch(), headers=patient.headers))
    await _until(lambda: slots.waiting == 1)
    other = world["patient_a2"]
    answer = await client.post(f"/v1/patients/{other.patient_id}/doses", json=dose(), headers=other.headers)
    assert answer.status_code == 201
    other_sync = {"entries": [{"type": "dose", "patient_id": str(other.patient_id), **dose()}]}
    assert (await client.post("/v1/sync", json=other_sync, headers=other.headers)).status_code == 200
    assert not second.done()
    held.release()
    assert (await first).status_code == 200
    assert (await second).status_code == 200
    assert _slots_empty(slots)


@pytest.mark.parametrize("resource", ["summary", "report"])
async def test_summary_and_report_windows_are_at_most_366_days(
    client: httpx.AsyncClient, world: World, resource: str
) -> None:
    path = f"/v1/patients/{world['patient_a'].patient_id}/{resource}"
    headers = world["provider_a"].headers
    end = date(2026, 3, 1)
    longest = await client.get(f"{path}?from={end - timedelta(days=365)}&to={end}", headers=headers)
    assert longest.status_code == 200
    too_long = await client.get(f"{path}?from={end - timedelta(days=366)}&to={end}", headers=headers)
    assert too_long.status_code == 422
    assert too_long.headers["content-type"] == "application/problem+json"
    assert too_long.json()["errors"][0]["loc"] == ["query", "from"]


@pytest.mark.parametrize("resource", ["export.csv", "fhir"])
async def test_exports_may_span_longer_than_a_year(
    client: httpx.AsyncClient, world: World, resource: str
) -> None:
    path = f"/v1/patients/{world['patient_a'].patient_id}/{resource}?from=2023-03-01&to=2026-03-01"
    assert (await client.get(path, headers=world["provider_a"].headers)).status_code == 200


def _scope(method: str, path: str, query: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "query_string": query.encode()}


def test_which_requests_are_heavy_reads_and_bulk_writes() -> None:
    patient = f"/v1/patients/{uuid.uuid4()}"
    heavy = [
        _scope("GET", f"{patient}/report"),
        _scope("GET", "/v1/patients/me/report", "from=2026-01-01&to=2026-01-31"),
        _scope("GET", f"{patient}/export.csv"),
        _scope("GET", f"{patient}/fhir"),
        _scope("GET", f"{patient}/summary", "from=2025-03-01&to=2026-03-01"),
        _scope("GET", f"{patient}/summary", "from=2020-01-01"),
        _scope("GET", "/v1/panel", "limit=500"),
    ]
    light = [
        _scope("GET", f"{patient}/summary"),
        _scope("GET", f"{patient}/summary", "from=2026-01-01&to=2026-03-31"),  # 90 days
        _scope("GET", f"{patient}/summary", "from=yesterday&to=2026-03-31"),  # a 422
        _scope("GET", "/v1/panel"),
        _scope("GET", "/v1/panel", "limit=50"),
        _scope("GET", f"{patient}/doses"),
        _scope("POST", f"{patient}/report"),
        _scope("GET", f"{patient}/report/extra"),
    ]
    assert [s["path"] for s in heavy if not is_heavy_read(s)] == []
    assert [(s["path"], s["query_string"]) for s in light if is_heavy_read(s)] == []
    assert is_bulk_write(_scope("POST", "/v1/sync")) and is_bulk_write(_scope("POST", f"{patient}/doses"))
    assert not is_bulk_write(_scope("POST", f"{patient}/check-ins"))


async def test_slots_hand_back_what_they_took_when_the_wait_runs_out() -> None:
    slots = Slots(per_process=1, per_caller=1, wait_seconds=0.05)
    assert await slots.acquire("a")
    assert not await slots.acquire("a")  # the caller's one slot is taken
    assert not await slots.acquire("b")  # the process's one slot is taken
    assert slots.callers.keys() == {"a"} and slots.waiting == 0
    slots.release("a")
    assert not slots.callers
    assert await slots.acquire("b")
    slots.release("b")
    assert slots.process is not None and not slots.process.locked()
