"""The flag lifecycle, the triage order, one flag under concurrency, escalation, retraction, the
outbox, and the periodic job for time-based rules."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from models.accounts import Patient
from models.flags import Flag, Severity
from models.outbox import OutboxEvent
from services.clinical.rules import Finding, Ref
from services.database import session_scope
from services.flags import lifecycle as flag_service
from services.flags.time_rules import evaluate_time_rules
from tests.flag_helpers import at, check_in, day, dose_on, gad7_on, post, rules, symptom_on
from tests.world import World


async def _count(app: FastAPI, model: type) -> int:
    async with session_scope(app.state.session_factory) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_acknowledge_then_resolve(client: httpx.AsyncClient, world: World) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    flag = (await check_in(client, patient, day(0), red_flags={"fall": True}))["flags"][0]
    assert (
        await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=patient.headers)
    ).status_code == 403
    acked = await client.post(
        f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers, json={"note": "calling"}
    )
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == str(provider.user_id)
    assert body["acknowledged_at"] and body["note"] == "calling"
    no_note = await client.post(f"/v1/flags/{flag['id']}/resolve", headers=provider.headers, json={})
    assert no_note.status_code == 422
    resolved = await client.post(
        f"/v1/flags/{flag['id']}/resolve",
        headers=provider.headers,
        json={"note": "bruised knee, no head injury"},
    )
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_by"] == str(provider.user_id)
    again = await client.post(f"/v1/flags/{flag['id']}/resolve", headers=provider.headers, json={"note": "x"})
    assert again.status_code == 409
    assert (
        await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers)
    ).status_code == 409
    # Resolved, the next fall opens a new flag.
    fresh = await check_in(client, patient, day(1), red_flags={"fall": True})
    assert fresh["flags"][0]["id"] != flag["id"]


async def test_triage_order_filters_and_scope(client: httpx.AsyncClient, world: World) -> None:
    patient, other = world["patient_a"], world["patient_a2"]
    fall = (await check_in(client, patient, day(0), red_flags={"fall": True}))["flags"][0]
    urgent = (await check_in(client, patient, day(1), red_flags={"seizure": True}))["flags"][0]
    routine = (await gad7_on(client, patient, day(2), 2), await gad7_on(client, patient, day(16), 6))[1][
        "flags"
    ][0]
    # An hour before the first fall: the queue puts the oldest evidence first.
    other_flag = (
        await check_in(client, other, day(0), submitted_at=at(day(0), 21), red_flags={"fall": True})
    )["flags"][0]

    admin = (await client.get("/v1/flags", headers=world["admin_a"].headers)).json()["items"]
    assert [f["id"] for f in admin] == [urgent["id"], other_flag["id"], fall["id"], routine["id"]]
    # Staff lists name the patient; a patient's own list does not need to.
    assert [f["patient_name"] for f in admin] == ["Patient A", "Patient A2", "Patient A", "Patient A"]
    provider = (await client.get("/v1/flags", headers=world["provider_a"].headers)).json()["items"]
    assert [f["id"] for f in provider] == [urgent["id"], fall["id"], routine["id"]]
    own = (await client.get("/v1/flags", headers=patient.headers)).json()["items"]
    assert {f["patient_id"] for f in own} == {str(patient.patient_id)}
    assert {f["patient_name"] for f in own} == {None}
    assert (await client.get("/v1/flags", headers=world["admin_b"].headers)).json()["items"] == []
    only_high = (await client.get("/v1/flags?severity=high", headers=world["admin_a"].headers)).json()[
        "items"
    ]
    assert {f["id"] for f in only_high} == {fall["id"], other_flag["id"]}
    by_patient = await client.get(
        f"/v1/flags?patient_id={other.patient_id}", headers=world["provider_a"].headers
    )
    assert by_patient.json()["items"] == []  # not their patient: nothing, not an error
    await client.post(f"/v1/flags/{fall['id']}/acknowledge", headers=world["provider_a"].headers)
    still_open = (await client.get("/v1/flags?status=open", headers=world["admin_a"].headers)).json()["items"]
    assert fall["id"] not in {f["id"] for f in still_open}
    # Open before acknowledged: the acknowledged fall goes to the end of the queue.
    first = (await client.get("/v1/flags?limit=2", headers=world["admin_a"].headers)).json()
    second = (
        await client.get(f"/v1/flags?limit=2&cursor={first['next_cursor']}", headers=world["admin_a"].headers)
    ).json()
    queue = [urgent["id"], other_flag["id"], routine["id"], fall["id"]]
    assert [f["id"] for f in first["items"] + second["items"]] == queue
    patient_list = await client.get(
        f"/v1/patients/{patient.patient_id}/flags", headers=world["provider_a"].headers
    )
    assert [f["id"] for f in patient_list.json()["items"]] == [urgent["id"], routine["id"], fall["id"]]
    assert (
        await client.get(f"/v1/flags/{urgent['id']}", headers=world["provider_a2"].headers)
    ).status_code == 404


async def test_two_concurrent_check_ins_with_the_same_red_flag_give_one_flag(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    answers = await asyncio.gather(
        check_in(client, patient, day(0), red_flags={"face_swelling": True}),
        check_in(client, patient, day(0), red_flags={"breathing_trouble": True}),
    )
    assert all(rules(a) == {"anaphylaxis"} for a in answers)
    async with session_scope(app.state.session_factory) as session:
        stored = list((await session.execute(select(Flag))).scalars())
    assert len(stored) == 1
    assert {e["id"] for e in stored[0].evidence} == {a["check_in"]["id"] for a in answers}
    assert await _count(app, OutboxEvent) == 1


async def test_escalation_raises_severity_reopens_and_writes_an_event(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    flag = (await check_in(client, patient, day(0), red_flags={"fall": True}))["flags"][0]
    await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=world["provider_a"].headers)
    async with session_scope(app.state.session_factory) as session:
        record = await session.get_one(Patient, patient.patient_id)
        finding = Finding(
            "fall", Severity.urgent, "A fall with a head injury.", (Ref("check_in", patient.user_id),)
        )
        escalated = await flag_service.apply_finding(session, app.state.settings, record, finding)
        lower = Finding("fall", Severity.routine, "A minor fall.", (Ref("check_in", patient.patient_id),))
        attached = await flag_service.apply_finding(session, app.state.settings, record, lower)
    assert escalated is not None and attached is not None
    after = (await client.get(f"/v1/flags/{flag['id']}", headers=world["provider_a"].headers)).json()
    assert after["severity"] == "urgent" and after["status"] == "open" and len(after["evidence"]) == 3
    async with session_scope(app.state.session_factory) as session:
        types = [
            e.type
            for e in (await session.execute(select(OutboxEvent).order_by(OutboxEvent.created_at))).scalars()
        ]
    assert types == ["flag.created", "flag.escalated"]


async def test_entered_in_error_evidence_stays_on_the_flag_marked_retracted(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    answer = await check_in(client, patient, day(0), red_flags={"seizure": True})
    flag = answer["flags"][0]
    deleted = await client.delete(
        f"/v1/patients/me/check-ins/{answer['check_in']['id']}", headers=patient.headers
    )
    assert deleted.status_code == 204
    after = (await client.get(f"/v1/flags/{flag['id']}", headers=world["provider_a"].headers)).json()
    assert after["status"] == "open"
    assert after["evidence"] == [{"type": "check_in", "id": answer["check_in"]["id"], "retracted": True}]


async def test_entered_in_error_entries_raise_nothing_later(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    wrong = await gad7_on(client, patient, day(0), 1)
    await client.delete(f"/v1/patients/me/anxiety/{wrong['id']}", headers=patient.headers)
    baseline = await gad7_on(client, patient, day(1), 6)
    assert baseline["flags"] == []  # no previous GAD-7: the one in error does not count
    for d in (2, 3):
        report = await symptom_on(client, patient, day(d), "vomiting", frequency=2, severity=2)
        await client.delete(f"/v1/patients/me/symptoms/{report['id']}", headers=patient.headers)
    third = await symptom_on(client, patient, day(4), "vomiting", frequency=2, severity=2)
    assert "persistent_symptom" not in rules(third)


async def test_the_webhook_event_carries_no_patient_text(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    answer = await check_in(
        client, patient, day(0), red_flags={"self_harm_thoughts": 2}, note="my private words"
    )
    await client.post(
        f"/v1/flags/{answer['flags'][0]['id']}/acknowledge",
        headers=world["provider_a"].headers,
        json={"note": "clinician note"},
    )
    async with session_scope(app.state.session_factory) as session:
        event = (await session.execute(select(OutboxEvent))).scalar_one()
    payload = json.dumps(event.data)
    assert event.type == "flag.created" and event.severity == "urgent"
    assert event.data["patient_id"] == str(patient.patient_id)
    assert event.data["flag"]["rule"] == "suicidality"
    assert "private" not in payload and "Patient A" not in payload and "@" not in payload
    assert "note" not in event.data["flag"]


async def _regimen(client: httpx.AsyncClient, world: World, start: int, taper: bool = False) -> None:
    body = {
        "schedule": [{"time": "08:00", "dose_mg": 300}],
        "start_date": day(start).isoformat(),
        "taper": taper,
    }
    response = await client.post(
        f"/v1/patients/{world['patient_a'].patient_id}/regimens",
        headers=world["provider_a"].headers,
        json=body,
    )
    assert response.status_code == 201


def _noon(offset: int) -> datetime:
    return datetime.fromisoformat(at(day(offset), 12)).astimezone(UTC)


async def _open_rules(client: httpx.AsyncClient, world: World) -> list[str]:
    items = (await client.get("/v1/flags?status=open", headers=world["admin_a"].headers)).json()["items"]
    return sorted(f["rule"] for f in items)


async def test_abrupt_stop_after_2_days_without_a_dose_and_idempotent(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Doses stop after day 0 while the check-ins go on to day 2 (CLINICAL.md 4, revised: abrupt_stop
    needs the patient to keep recording); then the check-ins stop too."""
    await _regimen(client, world, start=-10)
    patient = world["patient_a"]
    for d in range(-10, 1):  # a dose and a check-in every day up to day 0
        await dose_on(client, patient, day(d), 300)
        await check_in(client, patient, day(d))
    for d in (1, 2):  # check-ins, no dose
        await check_in(client, patient, day(d))
    factory = app.state.session_factory
    # Day 2: only day 1 had no dose.
    await evaluate_time_rules(factory, app.state.settings, now=_noon(2))
    assert await _open_rules(client, world) == []
    # Day 3: days 1 and 2 had no dose, and check-ins.
    await evaluate_time_rules(factory, app.state.settings, now=_noon(3))
    assert await _open_rules(client, world) == ["abrupt_stop"]
    await evaluate_time_rules(factory, app.state.settings, now=_noon(3))
    # Day 6: 3 days (3, 4, 5) without a check-in.
    await evaluate_time_rules(factory, app.state.settings, now=_noon(5))
    assert await _open_rules(client, world) == ["abrupt_stop"]
    await evaluate_time_rules(factory, app.state.settings, now=_noon(6))
    await evaluate_time_rules(factory, app.state.settings, now=_noon(6))
    assert await _open_rules(client, world) == ["abrupt_stop", "missed_check_ins"]
    assert await _count(app, Flag) == 2 and await _count(app, OutboxEvent) == 2
    # Resolved, the same lapse is not raised again by later runs.
    for flag in (await client.get("/v1/flags", headers=world["admin_a"].headers)).json()["items"]:
        await client.post(
            f"/v1/flags/{flag['id']}/resolve",
            headers=world["provider_a"].headers,
            json={"note": "spoke with the patient"},
        )
    await evaluate_time_rules(factory, app.state.settings, now=_noon(7))
    assert await _open_rules(client, world) == [] and await _count(app, Flag) == 2


async def test_abrupt_stop_on_a_taper_too(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    """CLINICAL.md 4 (revised): "a regimen (taper or not)". This case used to raise nothing: the last dose
    on day 0, a check-in on day 4, and on day 5 days 3 and 4 had none."""
    await _regimen(client, world, start=-10, taper=True)
    patient = world["patient_a"]
    await dose_on(client, patient, day(0), 300)
    await check_in(client, patient, day(4))
    await evaluate_time_rules(app.state.session_factory, app.state.settings, now=_noon(5))
    assert await _open_rules(client, world) == ["abrupt_stop"]
    items = (await client.get("/v1/flags?status=open", headers=world["admin_a"].headers)).json()["items"]
    assert items[0]["severity"] == "high" and "taper" in items[0]["reason"]


async def test_no_abrupt_stop_for_a_patient_who_recorded_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Stopped logging is not stopped taking: nothing recorded after day 0 gives missed_check_ins (3 days),
    never abrupt_stop, taper or not."""
    await _regimen(client, world, start=-10, taper=True)
    patient = world["patient_a"]
    await dose_on(client, patient, day(0), 300)
    await check_in(client, patient, day(0))
    factory = app.state.session_factory
    await evaluate_time_rules(factory, app.state.settings, now=_noon(3))
    assert await _open_rules(client, world) == []
    await evaluate_time_rules(factory, app.state.settings, now=_noon(4))
    assert await _open_rules(client, world) == ["missed_check_ins"]


async def test_no_abrupt_stop_when_a_dose_was_taken(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Check-ins on both days of the window and one dose taken on its second: no abrupt_stop."""
    await _regimen(client, world, start=-10, taper=True)
    patient = world["patient_a"]
    for d in (1, 2):
        await check_in(client, patient, day(d))
    await dose_on(client, patient, day(2), 300)
    await evaluate_time_rules(app.state.session_factory, app.state.settings, now=_noon(3))
    assert await _open_rules(client, world) == []


async def test_a_skipped_dose_is_recording_not_taking(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Nothing but a skipped dose on day 2: the patient kept recording and took nothing."""
    await _regimen(client, world, start=-10)
    patient = world["patient_a"]
    await dose_on(client, patient, day(0), 300)
    await check_in(client, patient, day(0))
    skipped = {"taken_at": at(day(2), 8), "dose_mg": 300, "status": "skipped"}
    await post(client, patient, "doses", skipped)
    await evaluate_time_rules(app.state.session_factory, app.state.settings, now=_noon(3))
    assert await _open_rules(client, world) == ["abrupt_stop"]


async def test_concurrent_job_runs_raise_one_flag(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    await _regimen(client, world, start=-10)
    await check_in(client, world["patient_a"], day(1))  # recording, but no dose on days 1 and 2
    await asyncio.gather(
        *(evaluate_time_rules(app.state.session_factory, app.state.settings, now=_noon(3)) for _ in range(3))
    )
    assert await _open_rules(client, world) == ["abrupt_stop"]
    assert await _count(app, OutboxEvent) == 1
    assert _noon(3) - _noon(0) == timedelta(days=3)
