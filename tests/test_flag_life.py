"""A flag's life (CLINICAL.md 4): reopened by an urgent answer after it was acknowledged, announced
again when left open, dated by its evidence, with every step and note kept; the queue and the panel
read it as a clinician would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from models.outbox import OutboxEvent
from services.alerting.delivery import deliver_due
from services.database import session_scope
from services.flags.unacknowledged import send_due_alerts
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import post
from tests.receiver import Receiver, received_at_least
from tests.world import Person, World, build_world

URGENT_ADVICE_START = "This can be serious. Call your local emergency number now"
NEW_YORK = ZoneInfo("America/New_York")  # the world's patients' zone (tests/world.py)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Half a minute before an open urgent flag is announced again (decimals allowed).
    return settings_for(
        database_url,
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        unacknowledged_alert_minutes=0.5,
    )


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


async def check_in_at(
    client: httpx.AsyncClient, person: Person, when: datetime, red_flags: dict[str, Any]
) -> dict[str, Any]:
    local = when.astimezone(NEW_YORK)
    body = {
        "id": str(uuid.uuid4()),
        "date": local.date().isoformat(),
        "submitted_at": when.isoformat(),
        "red_flags": red_flags,
    }
    response = await client.post(
        f"/v1/patients/{person.patient_id}/check-ins", headers=person.headers, json=body
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def endpoint_for(client: httpx.AsyncClient, world: World, receiver: Receiver, **fields: object) -> None:
    """An endpoint that names no events: it hears every flag event."""
    body = {"url": receiver.url, "min_severity": "urgent", **fields}
    response = await client.post("/v1/webhook-endpoints", headers=world["admin_a"].headers, json=body)
    assert response.status_code == 201, response.text
    assert set(response.json()["events"]) >= {"flag.reopened", "flag.unacknowledged"}
    receiver.secrets.append(response.json()["secret"])


async def event_types(app: FastAPI) -> list[str]:
    async with session_scope(app.state.session_factory) as session:
        events = await session.execute(select(OutboxEvent).order_by(OutboxEvent.created_at))
        return [e.type for e in events.scalars() if e.type.startswith("flag.")]


async def test_an_urgent_answer_on_an_acknowledged_flag_reopens_it_and_reaches_the_clinic(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    await endpoint_for(client, world, receiver)
    monday = await check_in_at(client, patient, ago(days=1), {"self_harm_thoughts": 2})
    [flag] = monday["flags"]
    assert flag["rule"] == "suicidality" and flag["status"] == "open"
    acknowledged = await client.post(
        f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers, json={"note": "Called: safety plan."}
    )
    assert acknowledged.json()["status"] == "acknowledged"

    tuesday = await check_in_at(client, patient, ago(minutes=5), {"self_harm_thoughts": 3})
    [reopened] = tuesday["flags"]
    assert reopened["id"] == flag["id"] and reopened["status"] == "open"
    assert tuesday["advice"].startswith(URGENT_ADVICE_START)
    assert await event_types(app) == ["flag.created", "flag.reopened"]

    await deliver_due(app.state.session_factory, app.state.settings)
    # Sent side by side: each its own delivery, in whatever order they arrive.
    sent = {r.payload["type"]: r for r in receiver.wait_for(2)}["flag.reopened"]
    data = sent.payload["data"]["flag"]
    assert data["status"] == "open" and data["observed_at"] == flag["observed_at"]
    # No clinician's note, history or patient name leaves in a webhook.
    assert not {"note", "history", "patient_name"} & set(data)
    assert "safety plan" not in sent.body.decode()

    resolved = await client.post(
        f"/v1/flags/{flag['id']}/resolve", headers=provider.headers, json={"note": "Seen in clinic today."}
    )
    after = resolved.json()
    assert [step["action"] for step in after["history"]] == [
        "created",
        "acknowledged",
        "reopened",
        "resolved",
    ]
    notes = [step.get("note") for step in after["history"]]
    assert notes == [None, "Called: safety plan.", None, "Seen in clinic today."]
    assert after["history"][1]["by"] == after["history"][3]["by"] == str(provider.user_id)
    # Dated by the answers, first and latest.
    assert after["observed_at"] == monday["check_in"]["submitted_at"]
    assert after["last_observed_at"] == tuesday["check_in"]["submitted_at"]


async def test_a_high_finding_on_an_acknowledged_flag_only_attaches(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    [flag] = (await check_in_at(client, patient, ago(days=1), {"fall": True}))["flags"]
    await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers)
    [again] = (await check_in_at(client, patient, ago(minutes=5), {"fall": True}))["flags"]
    assert again["id"] == flag["id"] and again["status"] == "acknowledged"
    assert [s["action"] for s in again["history"]] == ["created", "acknowledged", "evidence_added"]
    assert len(again["evidence"]) == 2
    assert await event_types(app) == ["flag.created"]


async def test_an_urgent_flag_left_open_is_announced_once_per_opening(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    [flag] = (await check_in_at(client, patient, ago(hours=2), {"seizure": True}))["flags"]
    [high] = (await check_in_at(client, patient, ago(hours=2), {"fall": True}))["flags"]

    async def due_at(now: datetime) -> int:
        async with session_scope(app.state.session_factory) as session:
            return await send_due_alerts(session, now)

    # Due 30 s (0.5 minutes) after it was opened, not before; then once only. A high flag never.
    assert await due_at(datetime.now(UTC)) == 0
    assert await due_at(datetime.now(UTC) + timedelta(seconds=31)) == 1
    assert await due_at(datetime.now(UTC) + timedelta(days=1)) == 0
    assert await event_types(app) == ["flag.created", "flag.created", "flag.unacknowledged"]
    got = (await client.get(f"/v1/flags/{flag['id']}", headers=provider.headers)).json()
    assert [s["action"] for s in got["history"]] == ["created", "unacknowledged_alert_sent"]
    assert (await client.get(f"/v1/flags/{high['id']}", headers=provider.headers)).json()["status"] == "open"

    # Acknowledged, then reopened: a new opening, a new deadline.
    await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers)
    assert await due_at(datetime.now(UTC) + timedelta(days=1)) == 0
    await check_in_at(client, patient, ago(minutes=1), {"seizure": True})
    assert await due_at(datetime.now(UTC)) == 0
    assert await due_at(datetime.now(UTC) + timedelta(seconds=31)) == 1
    # Acknowledged in time: nothing more.
    await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers)
    await check_in_at(client, patient, ago(minutes=1), {"face_swelling": True})  # anaphylaxis: its own flag
    await client.post(
        f"/v1/flags/{(await _flag_of(client, provider, 'anaphylaxis'))['id']}/acknowledge",
        headers=provider.headers,
    )
    assert await due_at(datetime.now(UTC) + timedelta(days=1)) == 0
    types = await event_types(app)
    assert types.count("flag.unacknowledged") == 2 and types.count("flag.reopened") == 1


async def _flag_of(client: httpx.AsyncClient, provider: Person, rule: str) -> dict[str, Any]:
    items = (await client.get("/v1/flags?limit=500", headers=provider.headers)).json()["items"]
    return next(f for f in items if f["rule"] == rule)


@pytest.mark.one_database
async def test_the_worker_sends_the_unacknowledged_alert_on_its_own(
    settings: Settings, receiver: Receiver
) -> None:
    """Through the worker as `symptrack serve` runs it: created, then unacknowledged after N minutes
    (0.01 here), however long the time-rules job's interval."""
    live = create_app(settings.model_copy(update={"unacknowledged_alert_minutes": 0.01}), run_worker=True)
    async with live.router.lifespan_context(live):
        transport = httpx.ASGITransport(app=live, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            world = await build_world(live)
            await endpoint_for(client, world, receiver)
            await check_in_at(client, world["patient_a"], ago(minutes=1), {"seizure": True})
            received = await received_at_least(receiver, 2, within=20)
    assert [r.payload["type"] for r in received] == ["flag.created", "flag.unacknowledged"]
    assert received[0].webhook_id != received[1].webhook_id


async def test_late_evidence_is_dated_when_it_happened_and_says_when_it_arrived(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    await endpoint_for(client, world, receiver, min_severity="high")
    await post(
        client,
        patient,
        "anxiety",
        {"recorded_at": ago(days=40).isoformat(), "instrument": "gad7", "items": [2, 2, 2, 1, 1, 1, 1]},
    )
    recorded = ago(days=28)
    batch = {
        "entries": [
            {
                "type": "anxiety",
                "patient_id": "me",
                "id": str(uuid.uuid4()),
                "recorded_at": recorded.isoformat(),
                "instrument": "gad7",
                "items": [3, 3, 3, 2, 2, 2, 2],
            }
        ]
    }
    synced = await client.post("/v1/sync", headers=patient.headers, json=batch)
    assert synced.status_code == 200 and synced.json()["results"][0]["status"] == 201
    flag = await _flag_of(client, provider, "anxiety_severe")
    observed = datetime.fromisoformat(flag["observed_at"])
    assert abs(observed - recorded) < timedelta(seconds=1)
    assert flag["observed_at"] == flag["last_observed_at"]
    local = recorded.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")
    assert f"Late: happened {local}, arrived " in flag["reason"]

    # The summary, the report place it on its own day; the webhook carries when it happened.
    summary = (
        await client.get(f"/v1/patients/{patient.patient_id}/summary", headers=provider.headers)
    ).json()
    [listed] = [f for f in summary["flags"] if f["id"] == flag["id"]]
    assert listed["date"] == recorded.astimezone(NEW_YORK).date().isoformat()
    assert listed["observed_at"] == flag["observed_at"]
    report = await client.get(f"/v1/patients/{patient.patient_id}/report", headers=provider.headers)
    assert report.status_code == 200 and f"<td>{local}</td>" in report.text
    await deliver_due(app.state.session_factory, app.state.settings)
    [sent] = receiver.wait_for(1)
    assert sent.payload["type"] == "flag.created"
    assert sent.payload["data"]["flag"]["observed_at"] == flag["observed_at"]


async def test_fresh_evidence_says_nothing_of_lateness(client: httpx.AsyncClient, world: World) -> None:
    [flag] = (await check_in_at(client, world["patient_a"], ago(hours=23), {"seizure": True}))["flags"]
    assert flag["reason"] == "Reported a seizure."


async def test_the_panel_counts_active_flags_and_unacknowledged_ones_apart(
    client: httpx.AsyncClient, world: World
) -> None:
    patient, provider = world["patient_a"], world["provider_a"]
    [urgent] = (await check_in_at(client, patient, ago(hours=3), {"seizure": True}))["flags"]
    await check_in_at(client, patient, ago(hours=2), {"fall": True})
    await client.post(f"/v1/flags/{urgent['id']}/acknowledge", headers=provider.headers)
    rows = (await client.get("/v1/panel", headers=provider.headers)).json()["items"]
    row = next(r for r in rows if r["patient_id"] == str(patient.patient_id))
    assert row["open_flags"] == {"urgent": 1, "high": 1, "routine": 0}
    assert row["unacknowledged"] == {"urgent": 0, "high": 1, "routine": 0}
