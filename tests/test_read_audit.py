"""Audit records of reads are written apart from the read: the read's transaction writes nothing (it
could run on a replica), the record is written after it, and a record that can't be written turns the
answer into a 503 that is logged and counted."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from api.observability import REGISTRY
from models.accounts import Role
from models.audit import AuditEvent
from services.accounts import patients
from services.accounts.access import Caller
from services.database import create_session_factory, session_scope
from tests.flag_helpers import check_in, day
from tests.world import World

WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Transactions:
    """Every transaction the app's engine ran, with its statements, in the order they ended."""

    done: list[list[str]] = field(default_factory=list)
    open: dict[int, list[str]] = field(default_factory=dict)

    def statement(self, connection: Any, sql: str) -> None:
        if not sql.lstrip().upper().startswith("BEGIN"):
            self.open.setdefault(id(connection), []).append(" ".join(sql.split()).upper())

    def end(self, connection: Any) -> None:
        if statements := self.open.pop(id(connection), None):
            self.done.append(statements)


@pytest.fixture
def transactions(app: FastAPI) -> Iterator[Transactions]:
    seen = Transactions()
    engine = app.state.engine.sync_engine

    def on_statement(connection: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.statement(connection, sql)

    def on_end(connection: Any) -> None:
        seen.end(connection)

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    yield seen
    event.remove(engine, "before_cursor_execute", on_statement)
    event.remove(engine, "commit", on_end)
    event.remove(engine, "rollback", on_end)


async def audit_rows(app: FastAPI, action: str) -> int:
    async with app.state.session_factory() as session:
        statement = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)  # type: ignore[arg-type]
        return int((await session.execute(statement)).scalar_one())


def reads(world: World, flag_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """Every kind of read of patient data: each is audited."""
    patient, provider, admin = world["patient_a"], world["provider_a"], world["admin_a"]
    return [
        (
            "GET /v1/patients/{patient_id}/summary",
            f"/v1/patients/{patient.patient_id}/summary",
            provider.headers,
        ),
        ("GET /v1/patients/{patient_id}", "/v1/patients/me", patient.headers),
        ("GET /v1/panel", "/v1/panel", provider.headers),
        ("GET /v1/flags", "/v1/flags", provider.headers),
        ("GET /v1/patients", "/v1/patients", admin.headers),
        ("GET /v1/flags/{flag_id}", f"/v1/flags/{flag_id}", provider.headers),
    ] + [
        (
            f"GET /v1/patients/{{patient_id}}/{tail}",
            f"/v1/patients/{patient.patient_id}/{tail}",
            provider.headers,
        )
        for tail in ("regimens", "flags", "doses", "check-ins", "export.csv", "fhir", "report")
    ]


async def test_a_read_writes_nothing_in_its_transaction_and_its_record_right_after(
    app: FastAPI, client: httpx.AsyncClient, world: World, transactions: Transactions
) -> None:
    flag = (await check_in(client, world["patient_a"], day(0), red_flags={"fall": True}))["flags"][0]
    for action, path, headers in reads(world, flag["id"]):
        before = await audit_rows(app, action)
        transactions.done.clear()
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        assert await audit_rows(app, action) > before, action  # a row per patient shown
        ran = transactions.done[:-1]  # the last: audit_rows' own
        writing = [t for t in ran if any(statement.startswith(WRITES) for statement in t)]
        # One transaction wrote, and only the record, after the read's (exports stream after it).
        assert len(writing) == 1 and len(writing[0]) == 1, (action, writing)
        assert writing[0][0].startswith("INSERT INTO AUDIT_EVENT"), action
        assert ran.index(writing[0]) > 0, action


# The read-only transaction is PostgreSQL's (what a replica gives); SQLite has no such mode.
@pytest.mark.one_database
async def test_reads_are_answered_from_read_only_transactions(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    flag = (await check_in(client, world["patient_a"], day(0), red_flags={"fall": True}))["flags"][0]
    writable = app.state.session_factory
    read_only = create_session_factory(app.state.engine.execution_options(postgresql_readonly=True))
    app.state.audit_session_factory, app.state.session_factory = writable, read_only
    try:
        async with read_only() as session:  # what the reads now get refuses any write
            with pytest.raises(DBAPIError, match="read-only transaction"):
                await session.execute(text("DELETE FROM audit_event"))
        for action, path, headers in reads(world, flag["id"]):
            before = await audit_rows(app, action)
            answer = await client.get(path, headers=headers)
            assert answer.status_code == 200, (action, answer.text)
            assert await audit_rows(app, action) > before, action  # a row per patient shown
    finally:
        app.state.session_factory = writable
        del app.state.audit_session_factory


@pytest.fixture
async def audit_refused(app: FastAPI, backend: str) -> Any:
    """A trigger that refuses every new audit row: the write fails the same way each time."""
    if backend == "sqlite":
        create = [
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event BEGIN SELECT RAISE(ABORT, 'no'); END"
        ]
        drop = ["DROP TRIGGER refuse_audit"]
    else:
        create = [
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no'; END $$ "
            "LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ]
        drop = ["DROP TRIGGER refuse_audit ON audit_event", "DROP FUNCTION refuse_audit()"]
    async with session_scope(app.state.session_factory) as session:
        for statement in create:
            await session.execute(text(statement))
    yield
    async with session_scope(app.state.session_factory) as session:
        for statement in drop:
            await session.execute(text(statement))


def failures() -> float:
    return REGISTRY.get_sample_value("symptrack_audit_write_failures_total") or 0.0


async def test_a_read_whose_record_cannot_be_written_is_answered_503_logged_and_counted(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    audit_refused: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    patient = world["patient_a"]
    counted = failures()
    with caplog.at_level(logging.ERROR, logger="symptrack.audit"):
        answer = await client.get(
            f"/v1/patients/{patient.patient_id}/summary", headers=world["provider_a"].headers
        )
        panel = await client.get("/v1/panel", headers=world["provider_a"].headers)
    assert answer.status_code == panel.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "summary" not in answer.text and str(patient.patient_id) not in answer.text
    assert failures() == counted + 2
    logged = [r.getMessage() for r in caplog.records if r.name == "symptrack.audit"]
    assert len(logged) == 2 and "GET /v1/patients/{patient_id}/summary" in logged[0]
    assert not any(str(patient.patient_id) in line or "Patient A" in line for line in logged)


async def test_a_record_deferred_outside_a_request_is_written_with_its_transaction(
    app: FastAPI, world: World
) -> None:
    admin = world["admin_a"]
    caller = Caller(admin.user_id, Role.admin, world.organizations["A"], uuid.uuid4())
    async with session_scope(app.state.session_factory) as session:
        page = await patients.list_patients(session, caller, 50, None)
    assert len(page.items) == 2
    assert await audit_rows(app, "GET /v1/patients") == 2
