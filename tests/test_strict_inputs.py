"""Request bodies are strict: text either database can store, numbers that are JSON numbers in clinical
or sane ranges, instants that are RFC 3339 strings, names that show something. Anything else is a 422
naming the field, and nothing is stored."""

from __future__ import annotations

import json
import types
import uuid
from datetime import date
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Strict
from sqlalchemy import func, select

from api.app import create_app
from models.accounts import Patient, User
from models.entry_schemas import (
    AnxietyCreate,
    AnxietyEntry,
    CheckInCreate,
    CheckInEntry,
    DoseCreate,
    DoseEntry,
    SymptomCreate,
    SymptomEntry,
)
from models.types import _full_date, _rfc3339, _storable
from models.webhooks import WebhookEndpoint
from services.database import session_scope
from services.settings import Settings
from tests.entry_helpers import dose, new_id, symptom
from tests.flag_helpers import at, check_in, day
from tests.test_entries import _assert_422, _counts
from tests.world import Person, World

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database

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
        {"type": "dose", "patient_id": "me", **dose(dose_mg="300")},
    ]
    response = await _send(client, "POST", "/v1/sync", patient, {"entries": entries})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [422, 201, 422, 422, 201, 422]
    assert [r["id"] for r in results] == [e["id"] for e in entries]
    assert [e["loc"] for e in results[0]["error"]["errors"]] == [["note"]]
    assert [e["loc"] for e in results[3]["error"]["errors"]] == [["doses", 0, "note"]]
    assert [e["loc"] for e in results[5]["error"]["errors"]] == [["dose_mg"]]
    assert await _counts(app) == (1, 0, 1, 0)


# ---- lax values ------------------------------------------------------------------------------------

LAX_DOSES = [
    ({"dose_mg": True}, "dose_mg"),  # was stored as 1 mg
    ({"dose_mg": "300"}, "dose_mg"),
    ({"dose_mg": 1e-320}, "dose_mg"),  # subnormal
    ({"dose_mg": 0.009}, "dose_mg"),  # below MIN_DOSE_MG
    ({"taken_at": 1_780_000_000}, "taken_at"),  # read as Unix time
    ({"taken_at": "1780000000"}, "taken_at"),
    ({"taken_at": 1_780_000_000.5}, "taken_at"),
    ({"taken_at": "2026-05-04T08:00:00"}, "taken_at"),  # no offset: refused as before
    ({"scheduled_for": 0}, "scheduled_for"),
]


@pytest.mark.parametrize(("change", "field"), LAX_DOSES)
async def test_lax_dose_values_are_422(
    app: FastAPI, client: httpx.AsyncClient, world: World, change: dict[str, Any], field: str
) -> None:
    patient = world["patient_a"]
    response = await _send(
        client, "POST", f"/v1/patients/{patient.patient_id}/doses", patient, dose(**change)
    )
    _assert_422(response, "body", field)
    assert await _counts(app) == (0, 0, 0, 0)


async def test_json_integers_and_rfc3339_variants_are_still_accepted(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    instants = ("2026-05-04T12:00:00Z", "2026-05-04t08:00:00.25-04:00", "2026-05-04T12:00:00+00:00")
    for taken_at, mg in zip(instants, (300, 0.01, 64.99999999999999), strict=True):
        body = dose(dose_mg=mg, taken_at=taken_at)
        response = await _send(client, "POST", f"/v1/patients/{patient.patient_id}/doses", patient, body)
        assert response.status_code == 201, response.text
        assert response.json()["dose_mg"] == mg
    body = _check_in_body(red_flags={"fever": 1, "seizure": False, "self_harm_thoughts": 0})
    response = await _send(client, "POST", f"/v1/patients/{patient.patient_id}/check-ins", patient, body)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "   "}, "name"),  # was stored as ""
        ({"name": "\u200b\t"}, "name"),  # a zero-width space shows nothing either
        ({"creatinine_clearance_ml_min": 1e308}, "creatinine_clearance_ml_min"),
        ({"creatinine_clearance_ml_min": 250.5}, "creatinine_clearance_ml_min"),
        ({"creatinine_clearance_ml_min": "60"}, "creatinine_clearance_ml_min"),
        ({"birth_year": 1990.0}, "birth_year"),
        ({"birth_year": "1990"}, "birth_year"),
        ({"takes_opioids_or_benzodiazepines": "yes"}, "takes_opioids_or_benzodiazepines"),
        ({"takes_opioids_or_benzodiazepines": 1}, "takes_opioids_or_benzodiazepines"),
        ({"takes_other_cns_depressants": "true"}, "takes_other_cns_depressants"),
        ({"has_lung_disease": 0}, "has_lung_disease"),
    ],
)
async def test_lax_patient_values_are_422_and_change_nothing(
    client: httpx.AsyncClient, world: World, change: dict[str, Any], field: str
) -> None:
    provider, patient = world["provider_a"], world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}"
    before = (await client.get(path, headers=provider.headers)).json()
    _assert_422(await _send(client, "PATCH", path, provider, change), "body", field)
    assert (await client.get(path, headers=provider.headers)).json() == before


async def test_valid_names_and_clearances_are_stored_as_before(
    client: httpx.AsyncClient, world: World
) -> None:
    provider, patient = world["provider_a"], world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}"
    body = {"name": "  Ana Lima ", "creatinine_clearance_ml_min": 250, "birth_year": 1990}
    response = await _send(client, "PATCH", path, provider, body)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Ana Lima"  # stripped, as before
    assert response.json()["creatinine_clearance_ml_min"] == 250


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"max_daily_mg": 1e308}, ("body", "max_daily_mg")),
        ({"max_daily_mg": True}, ("body", "max_daily_mg")),
        ({"taper": "false"}, ("body", "taper")),
        ({"start_date": 1_777_852_800}, ("body", "start_date")),  # midnight Unix time, read as a day
        ({"schedule": [{"time": "08:00", "dose_mg": "300"}]}, ("body", "schedule", 0, "dose_mg")),
        ({"medication": "  "}, ("body", "medication")),
    ],
)
async def test_lax_regimen_values_are_422(
    client: httpx.AsyncClient, world: World, change: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    provider, patient = world["provider_a"], world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/regimens"
    body = {"schedule": [{"time": "08:00", "dose_mg": 300}], "start_date": "2026-05-04", **change}
    _assert_422(await _send(client, "POST", path, provider, body), *loc)
    assert (await client.get(path, headers=provider.headers)).json() == []


@pytest.mark.parametrize(
    ("red_flags", "loc"),
    [
        ({"self_harm_thoughts": True}, ("body", "red_flags", "self_harm_thoughts")),
        ({"self_harm_thoughts": 1.0}, ("body", "red_flags", "self_harm_thoughts")),
        ({"self_harm_thoughts": "1"}, ("body", "red_flags", "self_harm_thoughts")),
        ({"fever": "yes"}, ("body", "red_flags", "fever")),
    ],
)
async def test_red_flag_answers_are_booleans_or_whole_numbers(
    app: FastAPI, client: httpx.AsyncClient, world: World, red_flags: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    patient = world["patient_a"]
    body = _check_in_body(red_flags=red_flags)
    _assert_422(
        await _send(client, "POST", f"/v1/patients/{patient.patient_id}/check-ins", patient, body), *loc
    )
    assert await _counts(app) == (0, 0, 0, 0)


async def test_a_blank_resolution_note_is_422(client: httpx.AsyncClient, world: World) -> None:
    flag = (await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True}))["flags"][0]
    response = await _send(
        client, "POST", f"/v1/flags/{flag['id']}/resolve", world["provider_a"], {"note": " "}
    )
    _assert_422(response, "body", "note")


# ---- every request model uses the checked types -----------------------------------------------------


def _loose(annotation: Any, metadata: list[Any], where: str, seen: set[type]) -> list[str]:
    """Places in a request type where a plain str, number, bool or date would take lax input."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _loose(base, [*metadata, *extra], where, seen)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _loose_model(annotation, seen)
    if origin in (Union, types.UnionType, list, dict, tuple):
        return [found for arg in get_args(annotation) for found in _loose(arg, [], where, seen)]
    if origin is Literal or annotation in (type(None), uuid.UUID):
        return []
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return []
    before = {m.func for m in metadata if isinstance(m, BeforeValidator)}
    if annotation is str and _storable in before:
        return []
    if annotation in (int, float, bool) and any(isinstance(m, Strict) and m.strict for m in metadata):
        return []
    if (annotation is AwareDatetime and _rfc3339 in before) or (annotation is date and _full_date in before):
        return []
    return [f"{where}: {annotation!r}"]


def _loose_model(model: type[BaseModel], seen: set[type]) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    return [
        found
        for name, field in model.model_fields.items()
        for found in _loose(field.annotation, list(field.metadata), f"{model.__name__}.{name}", seen)
    ]


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # a router included with include_router
            found.extend(_api_routes(route.original_router.routes))
    return found


def test_every_request_body_field_has_a_strict_type() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))  # never started: no database
    bodies = [
        p.field_info.annotation
        for r in _api_routes(app.routes)
        for p in r.dependant.body_params
        # An opaque credential, never stored: anything unreadable counts as no device token (200).
        if (r.path, p.name) != ("/v1/auth/token", "device_token")
    ]
    assert len(bodies) >= 15  # the walk found the routes
    seen: set[type] = set()
    loose = [f for body in bodies for f in _loose(body, [], "body", seen)]
    # The sync batch's entries are the union of the four kinds' bodies (with `type` and `patient_id`):
    # the walk reaches them through SyncRequest, and each kind's own body besides.
    assert {DoseEntry, AnxietyEntry, SymptomEntry, CheckInEntry} <= seen
    loose += [
        f
        for model in (DoseCreate, AnxietyCreate, SymptomCreate, CheckInCreate)
        for f in _loose_model(model, seen)
    ]
    assert not loose, loose
