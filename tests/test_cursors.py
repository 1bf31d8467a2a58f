"""Every list route validates its cursor in full: whatever a caller crafts (huge integers, wrong types,
bad dates, not base64, deep JSON, very long) is a 422 problem naming `cursor`, never a 500 (issue 25, 4).
The routes come from the OpenAPI document, so a new list is covered the day it is added."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from services.pagination import b64_json_encode
from tests.test_problems import assert_problem
from tests.world import World

HUGE = 10**30  # past every driver's integer range
AT = "2026-03-08T12:00:00+00:00"
ID = str(uuid.uuid4())


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Every shape of cursor the API makes (entries, patients, audit, deliveries: at+id; flags:
# status+rank+at+id; panel: as_of+flags+id), each with one field broken.
CRAFTED: list[tuple[str, str]] = [
    ("huge status and rank", b64_json_encode({"status": HUGE, "rank": HUGE, "at": AT, "id": ID})),
    ("negative huge rank", b64_json_encode({"status": 0, "rank": -HUGE, "at": AT, "id": ID})),
    ("huge panel counts", b64_json_encode({"as_of": AT, "flags": [HUGE, 0, 0, 0], "id": ID})),
    ("float rank", b64_json_encode({"status": 0, "rank": 1.5, "at": AT, "id": ID})),
    ("string rank", b64_json_encode({"status": "0", "rank": "1", "at": AT, "id": ID})),
    ("bool status", b64_json_encode({"status": True, "rank": 1, "at": AT, "id": ID})),
    (
        "integer id",
        b64_json_encode({"status": 0, "rank": 1, "as_of": AT, "flags": [0, 0, 0, 0], "at": AT, "id": 7}),
    ),
    ("list id", b64_json_encode({"at": AT, "as_of": AT, "flags": [0, 0, 0, 0], "id": [ID]})),
    ("integer at", b64_json_encode({"status": 0, "rank": 1, "at": HUGE, "as_of": HUGE, "id": ID})),
    (
        "impossible date",
        b64_json_encode({"status": 0, "rank": 1, "at": "2026-13-45T00:00:00+00:00", "id": ID}),
    ),
    ("year 1", b64_json_encode({"status": 0, "rank": 1, "at": "0001-01-01T00:00:00+00:00", "id": ID})),
    ("naive time", b64_json_encode({"status": 0, "rank": 1, "at": "2026-03-08T12:00:00", "id": ID})),
    ("flags not a list", b64_json_encode({"as_of": AT, "flags": {"a": 1}, "id": ID})),
    ("flags of strings", b64_json_encode({"as_of": AT, "flags": "0000", "id": ID})),
    ("not an object", _raw("[1, 2, 3]")),
    ("null", _raw("null")),
    ("infinity", _raw('{"status": Infinity, "rank": NaN, "at": "' + AT + '", "id": "' + ID + '"}')),
    ("deep JSON", _raw("[" * 100 + "]" * 100)),
    ("not base64", "!!!not-base64***"),
    ("not UTF-8", base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode()),
    ("not ASCII", "cursör"),
    ("very long", "A" * 5000),
    ("empty object", b64_json_encode({})),
]


async def _list_routes(app: FastAPI, client: httpx.AsyncClient, world: World) -> list[str]:
    admin = world["admin_a"].headers
    body = {"url": "https://93.184.215.14/hook", "events": ["flag.created"]}  # a public address: no DNS
    created = await client.post("/v1/webhook-endpoints", headers=admin, json=body)
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    filled = {"patient_id": str(world["patient_a"].patient_id), "endpoint_id": endpoint_id}
    paths = []
    for path, operations in app.openapi()["paths"].items():
        operation: dict[str, Any] = operations.get("get", {})
        if any(p["name"] == "cursor" for p in operation.get("parameters", [])):
            paths.append(path.format(**filled))
    return paths


async def test_every_list_refuses_every_crafted_cursor(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    paths = await _list_routes(app, client, world)
    assert len(paths) >= 10, paths  # patients, four entry kinds, two flag lists, panel, audit, deliveries
    admin = world["admin_a"].headers
    wrong = []
    for path in paths:
        assert (await client.get(path, headers=admin)).status_code == 200, path
        for name, cursor in CRAFTED:
            answer = await client.get(path, headers=admin, params={"cursor": cursor})
            if answer.status_code != 422:
                wrong.append((path, name, answer.status_code))
                continue
            problem = assert_problem(answer, 422)
            assert [e["loc"][-1] for e in problem["errors"]] == ["cursor"], (path, name, problem)
            assert len(cursor) < 20 or cursor not in json.dumps(problem), (path, name)
    assert not wrong, wrong


async def test_a_patient_lists_with_crafted_cursors_too(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"].headers
    wrong = []
    for path in ("/v1/patients/me/doses", "/v1/patients/me/flags", "/v1/patients/me/check-ins"):
        for name, cursor in CRAFTED:
            answer = await client.get(path, headers=patient, params={"cursor": cursor})
            if answer.status_code != 422 or answer.json()["errors"][0]["loc"][-1] != "cursor":
                wrong.append((path, name, answer.status_code))
    assert not wrong, wrong
