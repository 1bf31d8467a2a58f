"""One local day's doses are counted together (issue 22; CLINICAL.md 4, dose_above_max: "doses recorded at
the same time (two phones, a sync racing a dose) are counted together").

Two 600 mg doses against a 900 mg maximum, sent at the same time, must raise dose_above_max at write time,
whichever way the two requests interleave: on PostgreSQL the day's advisory lock (services/flags/
dose_day_lock.py) makes the second wait for the first's commit before it reads the day; on SQLite
BEGIN IMMEDIATE already serializes writers. No periodic job runs in these tests, except in the last,
which checks that job as the safety net."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from models.entries import Dose
from models.flags import Flag
from services.database import session_scope
from services.flags.dose_day_lock import lock_dose_days, lock_key
from services.flags.time_rules import evaluate_time_rules
from tests.entry_helpers import new_id
from tests.flag_helpers import at, check_in, day
from tests.world import Person, World

PAIRS = 20
MAX_DAILY_MG = 900


async def _regimen(client: httpx.AsyncClient, world: World, start: int) -> None:
    """A regimen that schedules its maximum: a day above the maximum is not yet 50% above the
    scheduled total (above_prescribed, tested in tests/test_prescribing.py), so these tests see
    dose_above_max alone."""
    body = {
        "schedule": [{"time": t, "dose_mg": MAX_DAILY_MG / 3} for t in ("08:00", "14:00", "20:00")],
        "start_date": day(start).isoformat(),
        "max_daily_mg": MAX_DAILY_MG,
    }
    response = await client.post(
        f"/v1/patients/{world['patient_a'].patient_id}/regimens",
        headers=world["provider_a"].headers,
        json=body,
    )
    assert response.status_code == 201, response.text


def _dose(on_day: int, hour: int, mg: float = 600) -> dict[str, Any]:
    return {"id": new_id(), "taken_at": at(day(on_day), hour), "dose_mg": mg}


def _post_dose(client: httpx.AsyncClient, patient: Person, body: dict[str, Any]) -> Any:
    return client.post(f"/v1/patients/{patient.patient_id}/doses", headers=patient.headers, json=body)


def _post_sync(client: httpx.AsyncClient, patient: Person, body: dict[str, Any]) -> Any:
    entries = [{"type": "dose", "patient_id": "me", **body}]
    return client.post("/v1/sync", headers=patient.headers, json={"entries": entries})


async def _dose_flags(app: FastAPI) -> list[Flag]:
    async with session_scope(app.state.session_factory) as session:
        statement = select(Flag).where(Flag.rule == "dose_above_max")  # type: ignore[arg-type]
        return list((await session.execute(statement)).scalars())


async def _flagged_together(app: FastAPI, dose_ids: set[str]) -> bool:
    """A dose_above_max flag holds every one of these doses as its evidence."""
    return any(dose_ids <= {e["id"] for e in flag.evidence} for flag in await _dose_flags(app))


async def test_two_doses_of_one_day_sent_together_are_flagged_every_time(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    await _regimen(client, world, start=-PAIRS)
    unflagged = []
    for offset in range(-PAIRS + 1, 1):  # a day of its own per pair
        first, second = _dose(offset, 8), _dose(offset, 9)
        answers = await asyncio.gather(
            _post_dose(client, patient, first), _post_dose(client, patient, second)
        )
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        if not await _flagged_together(app, {first["id"], second["id"]}):
            unflagged.append(day(offset))
    assert unflagged == [], f"{len(unflagged)} of {PAIRS} racing pairs not flagged at write time"


async def test_a_dose_racing_a_one_entry_sync_is_flagged_every_time(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    await _regimen(client, world, start=-PAIRS)
    unflagged = []
    for offset in range(-PAIRS + 1, 1):
        alone, synced = _dose(offset, 8), _dose(offset, 9)
        answers = await asyncio.gather(
            _post_dose(client, patient, alone), _post_sync(client, patient, synced)
        )
        assert [a.status_code for a in answers] == [201, 200], [a.text for a in answers]
        assert answers[1].json()["results"][0]["status"] == 201, answers[1].text
        if not await _flagged_together(app, {alone["id"], synced["id"]}):
            unflagged.append(day(offset))
    assert unflagged == [], f"{len(unflagged)} of {PAIRS} racing pairs not flagged at write time"


async def test_two_batches_over_the_same_two_days_in_opposite_orders_both_store_and_flag(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """A batch locks all its days at once, in one order for everyone: two phones syncing the same days
    listed the other way round neither deadlock nor miss each other's doses."""
    patient = world["patient_a"]
    await _regimen(client, world, start=-PAIRS)
    for offset in range(-PAIRS + 2, 1, 2):
        one = [_dose(offset, 8), _dose(offset - 1, 8)]
        other = [_dose(offset - 1, 9), _dose(offset, 9)]
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/sync",
                    headers=patient.headers,
                    json={"entries": [{"type": "dose", "patient_id": "me", **d} for d in batch]},
                )
                for batch in (one, other)
            )
        )
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert all(r["status"] == 201 for a in answers for r in a.json()["results"])
        assert await _flagged_together(app, {one[0]["id"], other[1]["id"]}), day(offset)
        assert await _flagged_together(app, {one[1]["id"], other[0]["id"]}), day(offset - 1)


async def test_a_check_in_racing_a_dose_is_flagged(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """The third write path: a check-in's doses."""
    patient = world["patient_a"]
    await _regimen(client, world, start=-5)
    for offset in range(-4, 1):
        alone, part = _dose(offset, 8), _dose(offset, 9)
        body = {"id": new_id(), "date": day(offset).isoformat(), "submitted_at": at(day(offset), 22)}
        answers = await asyncio.gather(
            _post_dose(client, patient, alone),
            client.post(
                f"/v1/patients/{patient.patient_id}/check-ins",
                headers=patient.headers,
                json={**body, "doses": [part]},
            ),
        )
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        assert await _flagged_together(app, {alone["id"], part["id"]}), day(offset)


@pytest.mark.one_database  # the lock is PostgreSQL's; SQLite's writers wait in BEGIN IMMEDIATE
async def test_a_dose_waits_for_the_day_another_transaction_holds(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """The interleaving that lost a dose, forced: another transaction has locked the day and inserted
    600 mg but not committed yet. The request must wait for it (seen in pg_stat_activity, not guessed
    with a sleep), and once it commits, count both doses."""
    patient = world["patient_a"]
    await _regimen(client, world, start=-5)
    factory = app.state.session_factory
    other_id = uuid.uuid4()
    async with session_scope(factory) as holder:
        await lock_dose_days(holder, [(patient.patient_id, day(0))])
        holder.add(_dose_row(patient.patient_id, other_id, 0, 7, 600))
        await holder.flush()
        request = asyncio.ensure_future(_post_dose(client, patient, body := _dose(0, 9)))
        async with factory() as watcher:
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND datname = current_database()"
            )
            while not await watcher.scalar(waiting):
                assert not request.done(), request.result().text  # it went ahead without waiting
                await watcher.rollback()  # pg_stat_activity is read once per transaction
                await asyncio.sleep(0.01)  # polls a condition; no outcome depends on this interval
    answer = await request
    assert answer.status_code == 201, answer.text
    assert {f["rule"] for f in answer.json()["flags"]} == {"dose_above_max"}
    assert await _flagged_together(app, {str(other_id), body["id"]})


def _dose_row(patient_id: uuid.UUID, dose_id: uuid.UUID, on_day: int, hour: int, mg: float) -> Dose:
    """A taken dose written straight into the table, around the rules; it reached the server a minute
    after it was taken (on time: no "late" in a reason)."""
    taken_at = datetime.fromisoformat(at(day(on_day), hour)).astimezone(UTC)
    return Dose(
        id=dose_id,
        patient_id=patient_id,
        local_date=day(on_day),
        content_hash=uuid.uuid4().hex,
        created_at=taken_at + timedelta(minutes=1),
        created_by=None,
        taken_at=taken_at,
        medication="gabapentin",
        dose_mg=mg,
        status="taken",
    )


async def test_the_periodic_job_flags_a_day_over_the_maximum_that_has_no_flag(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """The safety net: doses written around the rules (here: straight into the table) whose day's total
    exceeds the maximum are flagged by one pass of the time-rules job, with the write-time rule's
    reason; a second pass changes nothing, and neither does a pass after the flag is resolved."""
    patient = world["patient_a"]
    await _regimen(client, world, start=-10)
    factory = app.state.session_factory
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with session_scope(factory) as session:
        for dose_id, hour in zip(ids, (8, 20), strict=True):
            session.add(_dose_row(patient.patient_id, dose_id, 0, hour, 600))
        # An older day over the maximum is outside the job's 2 days: the write path's to flag.
        session.add(_dose_row(patient.patient_id, uuid.uuid4(), -3, 8, 1000))
    await check_in(client, patient, day(0))  # a patient who keeps checking in: no time-based flag
    assert await _dose_flags(app) == []
    now = datetime.fromisoformat(at(day(1), 12)).astimezone(UTC)  # day 0 is yesterday
    assert await evaluate_time_rules(factory, app.state.settings, now=now) == 1
    flags = await _dose_flags(app)
    assert len(flags) == 1
    flag = flags[0]
    assert {e["id"] for e in flag.evidence} == {str(i) for i in ids}
    assert flag.reason == f"1200 mg taken on {day(0).isoformat()}, above the prescribed maximum of 900 mg."
    assert flag.severity == "high" and flag.status == "open"
    # Dated by its doses (CLINICAL.md 4: a flag is charted when its evidence happened).
    assert _utc(flag.observed_at) == datetime.fromisoformat(at(day(0), 8))
    assert _utc(flag.last_observed_at) == datetime.fromisoformat(at(day(0), 20))
    # Already flagged: the next pass does nothing.
    assert await evaluate_time_rules(factory, app.state.settings, now=now) == 0
    resolved = await client.post(
        f"/v1/flags/{flag.id}/resolve", headers=world["provider_a"].headers, json={"note": "spoke to them"}
    )
    assert resolved.status_code == 200, resolved.text
    assert await evaluate_time_rules(factory, app.state.settings, now=now) == 0
    assert len(await _dose_flags(app)) == 1


def test_the_lock_key_is_one_signed_64_bit_number_per_patient_and_day() -> None:
    patients = [uuid.UUID(int=n) for n in range(50)]
    keys = {lock_key(p, day(d)) for p in patients for d in range(-20, 1)}
    assert len(keys) == 50 * 21
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert lock_key(patients[0], day(0)) == lock_key(uuid.UUID(int=0), day(0))  # stable across calls


async def test_the_periodic_job_reads_today_and_yesterday_and_adds_a_dose_a_flag_missed(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Yesterday and today both over the maximum, one of them already flagged at write time without a
    dose that came around the rules: one pass attaches that dose and today's to the one active flag."""
    patient = world["patient_a"]
    await _regimen(client, world, start=-10)
    await check_in(client, patient, day(0))
    first = (await _post_dose(client, patient, _dose(-1, 8))).json()
    second = (await _post_dose(client, patient, _dose(-1, 9))).json()
    assert {f["rule"] for f in second["flags"]} == {"dose_above_max"}
    factory = app.state.session_factory
    missed, today = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    async with session_scope(factory) as session:
        session.add(_dose_row(patient.patient_id, missed, -1, 10, 300))
        for dose_id, hour in zip(today, (7, 8), strict=True):
            session.add(_dose_row(patient.patient_id, dose_id, 0, hour, 500))
    now = datetime.fromisoformat(at(day(0), 12)).astimezone(UTC)
    assert await evaluate_time_rules(factory, app.state.settings, now=now) == 1
    flags = await _dose_flags(app)
    assert len(flags) == 1
    expected = {first["id"], second["id"], str(missed), *(str(i) for i in today)}
    assert {e["id"] for e in flags[0].evidence} == expected
    # The write-time flag's first evidence stays its start; the latest is today's last dose.
    assert _utc(flags[0].observed_at) == datetime.fromisoformat(at(day(-1), 9))
    assert _utc(flags[0].last_observed_at) == datetime.fromisoformat(at(day(0), 8))
    assert await evaluate_time_rules(factory, app.state.settings, now=now) == 0


def _utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC) if instant.tzinfo else instant.replace(tzinfo=UTC)
