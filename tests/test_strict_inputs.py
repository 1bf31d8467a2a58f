"""Request bodies hold only text either database can store. Anything else is a 422 naming the field,
and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from models.accounts import Patient, User
from models.webhooks import WebhookEndpoint
from services.database import session_scope
from tests.entry_helpers import dose, new_id, symptom
from tests.flag_helpers import at, check_in, day
from tests.test_entries import _assert_422, _counts
from tests.world import Person, World

# What a phone sends when it cuts a string inside an emoji: half of a UTF-16 surrogate pair.
HALF_EMOJI = "\ud83d"


async def _send(
    client: httpx.AsyncClient, method: str, path: str, person: Person, body: Any
) -> httpx.Response:
    # json.dumps escapes the lone surrogate as \ud83d, as a phone's JSON encoder does (httpx's json=
    # would refuse to encode it).
    headers = {**person.headers, "content-type": "application/json"}
    return await client.request(method, path, headers=headers, content=json.dumps(body))


async def _count(app: FastAPI, model: type[Any]) -> int:
    async with session_scope(app.state.session_factory) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _check_in_body(**fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "date": day(0).isoformat(), "submitted_at": at(day(0), 22), **fields}


# ---- text no database can store ------------------------------------------------------------------

ENTRY_CASES = [
    ("doses", dose(note=f"felt fine {HALF_EMOJI}"), ("body", "note")),
    ("doses", dose(medication=f"gabapentin{HALF_EMOJI}"), ("body", "medication")),
    ("symptoms", symptom("nausea", frequency=1, severity=1, note=HALF_EMOJI), ("body", "note")),
    ("check-ins", _check_in_body(note="ok \udc00"), ("body", "note")),
    (
        "check-ins",
        _check_in_body(doses=[dose(taken_at=at(day(0), 8), note=HALF_EMOJI)]),
        ("body", "doses", 0, "note"),
    ),
    (
        "check-ins",
        _check_in_body(symptoms=[symptom("rash", present=1, reported_at=at(day(0)), note=HALF_EMOJI)]),
        ("body", "symptoms", 0, "note"),
    ),
    ("check-ins", _check_in_body(red_flags={f"fever{HALF_EMOJI}": True}), ("body", "red_flags")),
]


@pytest.mark.parametrize(("kind", "body", "loc"), ENTRY_CASES)
async def test_a_lone_surrogate_in_an_entry_is_422_naming_the_field(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    kind: str,
    body: dict[str, Any],
    loc: tuple[Any, ...],
) -> None:
    patient = world["patient_a"]
    response = await _send(client, "POST", f"/v1/patients/{patient.patient_id}/{kind}", patient, body)
    _assert_422(response, *loc)
    assert "Unicode" in response.json()["errors"][0]["msg"]
    assert await _counts(app) == (0, 0, 0, 0)


async def test_a_lone_surrogate_in_a_name_is_422_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    provider, patient = world["provider_a"], world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}"
    before = (await client.get(path, headers=provider.headers)).json()
    _assert_422(await _send(client, "PATCH", path, provider, {"name": f"Ana {HALF_EMOJI}"}), "body", "name")
    assert (await client.get(path, headers=provider.headers)).json() == before

    patients, users = await _count(app, Patient), await _count(app, User)
    new = {"email": "new@a.example", "name": f"Bo {HALF_EMOJI}", "timezone": "UTC"}
    _assert_422(await _send(client, "POST", "/v1/patients", provider, new), "body", "name")
    provider_body = {"email": "p@a.example", "name": f"Dr {HALF_EMOJI}", "password": "long enough 123"}
    _assert_422(await _send(client, "POST", "/v1/providers", world["admin_a"], provider_body), "body", "name")
    assert (await _count(app, Patient), await _count(app, User)) == (patients, users)


async def test_a_lone_surrogate_in_a_flag_note_or_webhook_description_is_422(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    flag = (await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True}))["flags"][0]
    provider = world["provider_a"]
    for action in ("acknowledge", "resolve"):
        response = await _send(
            client, "POST", f"/v1/flags/{flag['id']}/{action}", provider, {"note": HALF_EMOJI}
        )
        _assert_422(response, "body", "note")
    assert (await client.get(f"/v1/flags/{flag['id']}", headers=provider.headers)).json()["status"] == "open"
    endpoint = {"url": "https://alerts.example.com/hook", "description": f"pager {HALF_EMOJI}"}
    response = await _send(client, "POST", "/v1/webhook-endpoints", world["admin_a"], endpoint)
    _assert_422(response, "body", "description")
    assert await _count(app, WebhookEndpoint) == 0


async def test_a_sync_entry_with_a_lone_surrogate_gets_its_own_422_and_the_rest_are_stored(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    good_dose, good_symptom = dose(), symptom("nausea", frequency=1, severity=1)
    entries = [
        {"type": "dose", "patient_id": "me", **dose(note=HALF_EMOJI)},
        {"type": "dose", "patient_id": "me", **good_dose},
        {"type": "symptom", "patient_id": "me", **symptom("rash", present=1, note=HALF_EMOJI)},
        {
            "type": "check_in",
            "patient_id": "me",
            **_check_in_body(doses=[dose(taken_at=at(day(0), 8), note=HALF_EMOJI)]),
        },
        {"type": "symptom", "patient_id": "me", **good_symptom},
    ]
    response = await _send(client, "POST", "/v1/sync", patient, {"entries": entries})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [422, 201, 422, 422, 201]
    assert [r["id"] for r in results] == [e["id"] for e in entries]
    assert [e["loc"] for e in results[0]["error"]["errors"]] == [["note"]]
    assert [e["loc"] for e in results[3]["error"]["errors"]] == [["doses", 0, "note"]]
    assert await _counts(app) == (1, 0, 1, 0)
