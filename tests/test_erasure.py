"""Erasing a patient: nothing of them stays in any table but the audit trail (ids only), everyone else's
rows are untouched, their sessions stop at once, and the erasure itself is in the trail."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import select

import models
from api.cli import main
from models.accounts import Role
from models.auth import EnrollmentCode
from models.base import utcnow
from models.webhooks import WebhookEndpoint
from services.accounts.erasure import ERASE, erase_patient
from services.database import create_engine, create_session_factory, session_scope
from services.errors import NotFound
from services.settings import get_settings
from tests.flag_helpers import check_in, day, dose_on, symptom_on
from tests.test_cli import environment, rows, symptrack
from tests.world import Person, World

Snapshot = dict[str, set[str]]


async def snapshot(app: FastAPI) -> Snapshot:
    """Every row of every table, each as one string of its values."""
    tables: Snapshot = {}
    async with app.state.session_factory() as session:
        for table in models.metadata.sorted_tables:
            result = await session.execute(select(table))
            tables[table.name] = {json.dumps([_text(v) for v in row], sort_keys=True) for row in result}
    return tables


def _text(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def traces(person: Person, email: str) -> list[str]:
    assert person.patient_id is not None
    ids = [person.patient_id, person.user_id]
    # The email and name as whole values (quoted): "Patient A" is in "Patient A2".
    words = [email, person.name.replace("_", " ").title()]
    return [str(i) for i in ids] + [i.hex for i in ids] + [json.dumps(w) for w in words]


def mentions(row: str, marks: list[str]) -> bool:
    return any(mark in row for mark in marks)


def of_the_patient(tables: Snapshot, marks: list[str]) -> list[str]:
    """The marks and the id of every row that mentions one, until no more come (an alert's event
    names the patient, its deliveries name the event, their attempts the delivery)."""
    found = list(marks)
    while True:
        more = {
            json.loads(row)[0]
            for table, rows_ in tables.items()
            if table != "audit_event"
            for row in rows_
            if mentions(row, found)
        } - set(found)
        if not more:
            return found
        found += sorted(more)


async def record_a_life(app: FastAPI, client: httpx.AsyncClient, world: World, person: Person) -> None:
    """Entries, flags with history, a regimen, an alert with its delivery, an enrollment code, reads."""
    provider = world["provider_a"] if person.name == "patient_a" else world["provider_a2"]
    regimen = await client.post(
        f"/v1/patients/{person.patient_id}/regimens",
        headers=world["admin_a"].headers,
        json={"schedule": [{"time": "08:00", "dose_mg": 300}], "start_date": day(-5).isoformat()},
    )
    assert regimen.status_code == 201, regimen.text
    await dose_on(client, person, day(0), 300)
    await symptom_on(client, person, day(0), "dizziness", severity=2, interference=0)
    flag = (await check_in(client, person, day(1), red_flags={"fall": True}))["flags"][0]
    acknowledged = await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers, json={})
    assert acknowledged.status_code == 200, acknowledged.text
    summary = await client.get(f"/v1/patients/{person.patient_id}/summary", headers=provider.headers)
    assert summary.status_code == 200, summary.text
    async with session_scope(app.state.session_factory) as session:
        session.add(
            EnrollmentCode(
                patient_id=person.patient_id,
                code_hash=uuid.uuid4().hex * 2,
                expires_at=utcnow() + timedelta(days=7),
            )
        )


async def test_erasing_a_patient_leaves_only_the_audit_trail_and_nobody_else_loses_anything(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    async with session_scope(app.state.session_factory) as session:
        session.add(
            WebhookEndpoint(
                organization_id=world.organizations["A"],
                url="https://alerts.clinic.example/hook",
                events=["flag.created", "flag.escalated", "flag.reopened", "flag.unacknowledged"],
                min_severity="routine",
                secret="stored-encrypted",
            )
        )
    erased, other = world["patient_a"], world["patient_a2"]
    await record_a_life(app, client, world, erased)
    await record_a_life(app, client, world, other)
    # The erased patient's session is in this process's cache now.
    assert (await client.get("/v1/me", headers=erased.headers)).status_code == 200
    marks = traces(erased, "patient_a@a.example")
    before = await snapshot(app)
    marks = of_the_patient(before, marks)
    assert sum(mentions(row, marks) for rows_ in before.values() for row in rows_) > 10
    assert any(mentions(row, marks) for row in before["outbox_event"])

    async with session_scope(app.state.session_factory) as session:
        counts = await erase_patient(session, erased.patient_id or uuid.uuid4(), "Admin_A@a.example")

    assert (counts.patients, counts.user_accounts, counts.flags, counts.doses, counts.regimens) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert counts.outbox_events >= 1 and counts.webhook_deliveries >= 1 and counts.enrollment_codes == 1
    after = await snapshot(app)
    for table, rows_before in before.items():
        if table == "audit_event":
            continue
        # Nothing of the patient remains, and every other row is exactly as it was.
        assert after[table] == {row for row in rows_before if not mentions(row, marks)}, table
    # The trail keeps what it had (ids, route templates, outcomes: no name, no health data) and one more.
    assert before["audit_event"] <= after["audit_event"]
    [added] = after["audit_event"] - before["audit_event"]
    assert ERASE in added and str(world["admin_a"].user_id) in added
    kept = [row for row in after["audit_event"] if mentions(row, marks)]
    assert kept and not any(mentions(row, marks[4:6]) for row in kept)
    # The other patient's data is all there, as the snapshot check says; and reads still work.
    assert (
        await client.get(f"/v1/patients/{other.patient_id}/summary", headers=world["provider_a2"].headers)
    ).status_code == 200
    # Their session ended at once, cache or not.
    assert (await client.get("/v1/me", headers=erased.headers)).status_code == 401


async def test_an_unknown_patient_or_operator_is_refused_and_nothing_changes(
    app: FastAPI, world: World
) -> None:
    before = await snapshot(app)
    async with app.state.session_factory() as session:
        with pytest.raises(NotFound):
            await erase_patient(session, uuid.uuid4(), "admin_a@a.example")
        # Only an active admin of the patient's own organization may be named.
        for operator in ("admin_b@b.example", "provider_a@a.example", "nobody@a.example"):
            with pytest.raises(NotFound, match="operator"):
                await erase_patient(session, world["patient_a"].patient_id or uuid.uuid4(), operator)
        await session.rollback()
    assert await snapshot(app) == before


# The command is under test; the service is tested on both databases above.
@pytest.mark.one_database
def test_the_command_confirms_erases_and_counts(database_url: str) -> None:
    patient_id = asyncio.run(_a_patient(database_url))
    # In this process (quick): an unknown patient is one line; without --yes it asks, and a "no"
    # erases nothing.
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the command configures logging for its process
    try:
        runner = CliRunner()
        env = environment(database_url)
        unknown = runner.invoke(
            main, ["erase-patient", str(uuid.uuid4()), "--operator", "ops@clinic.example", "--yes"], env=env
        )
        assert unknown.exit_code == 1
        assert unknown.output.strip().count("\n") == 0 and "No patient" in unknown.output
        refused = runner.invoke(
            main, ["erase-patient", str(patient_id), "--operator", "ops@clinic.example"], env=env, input="n\n"
        )
        assert refused.exit_code == 1 and "cannot be undone" in refused.output and "Aborted" in refused.output
        assert rows(database_url, "SELECT count(*) FROM patient") == [(1,)]
    finally:
        get_settings.cache_clear()
        root.handlers[:] = handlers
        root.setLevel(level)

    # As an operator runs it.
    done = symptrack(
        database_url, "erase-patient", str(patient_id), "--operator", "ops@clinic.example", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert "patients: 1" in done.stdout and "user accounts: 1" in done.stdout
    assert rows(database_url, "SELECT count(*) FROM patient") == [(0,)]
    assert rows(database_url, f"SELECT count(*) FROM audit_event WHERE action = '{ERASE}'") == [(1,)]


async def _a_patient(database_url: str) -> uuid.UUID:
    """A patient of North Clinic and its admin, ops@clinic.example."""
    from services.accounts import users
    from tests.databases import settings_for

    engine = create_engine(settings_for(database_url))
    try:
        async with session_scope(create_session_factory(engine)) as session:
            organization = await users.create_organization(session, "North Clinic")
            await users.create_user(
                session,
                organization_id=organization.id,
                email="ops@clinic.example",
                name="Ops",
                role=Role.admin,
                password=None,
            )
            patient = await users.create_patient(
                session, organization_id=organization.id, email="p@clinic.example", name="P", timezone="UTC"
            )
            return patient.id
    finally:
        await engine.dispose()
