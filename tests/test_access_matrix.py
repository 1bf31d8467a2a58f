"""Who sees what, for every route the app has.

The routes come from the app itself: a new route with a path parameter and no rule here fails
`test_every_route_with_an_id_has_an_access_rule`, and a new route that answers without a token fails
`test_every_private_route_refuses_requests_without_a_valid_token`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.world import World

PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/enroll"),
    ("GET", "/v1/catalog"),
    ("GET", "/metrics"),  # aggregate counts only, for the operator's scraper
}

ALL_ROLES = frozenset({"patient", "provider", "admin"})


Prepare = Callable[[httpx.AsyncClient, World], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Rule:
    """Which of the patient's own circle may use the route (the rest of the circle gets 403), a body
    that is valid for it, and how to make the other resources its path names."""

    allowed: frozenset[str] = ALL_ROLES
    body: Callable[[], dict[str, object]] | None = None
    prepare: Prepare | None = None
    # What the rest of the circle gets: 403 where they may see the resource but not do this, 404 where
    # the resource is not theirs to see at all (an organization's webhook endpoints, for a provider).
    refused: int = 403


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _dose() -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "taken_at": _now(), "dose_mg": 300}


def _entry_maker(kind: str, body: Callable[[], dict[str, object]]) -> Prepare:
    async def prepare(client: httpx.AsyncClient, world: World) -> dict[str, str]:
        patient = world["patient_a"]
        created = await client.post(
            f"/v1/patients/{patient.patient_id}/{kind}", headers=patient.headers, json=body()
        )
        assert created.status_code == 201, created.text
        answer = created.json()
        return {"entry_id": answer["check_in"]["id"] if kind == "check-ins" else answer["id"]}

    return prepare


ENTRY_BODIES: dict[str, Callable[[], dict[str, object]]] = {
    "doses": _dose,
    "anxiety": lambda: {"id": str(uuid.uuid4()), "recorded_at": _now(), "instrument": "rating", "score": 4},
    "symptoms": lambda: {"id": str(uuid.uuid4()), "reported_at": _now(), "code": "dizziness", "severity": 0},
    "check-ins": lambda: {
        "id": str(uuid.uuid4()),
        "date": datetime.now(ZoneInfo("America/New_York")).date().isoformat(),
        "submitted_at": _now(),
        "anxiety_rating": 3,
    },
}


async def _make_flag(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    """A check-in answering yes to a fall raises (or adds to) a high flag for patient_a."""
    patient = world["patient_a"]
    body = {**ENTRY_BODIES["check-ins"](), "red_flags": {"fall": True}}
    created = await client.post(
        f"/v1/patients/{patient.patient_id}/check-ins", headers=patient.headers, json=body
    )
    assert created.status_code == 201, created.text
    return {"flag_id": created.json()["flags"][0]["id"]}


STAFF = frozenset({"provider", "admin"})
ADMIN = frozenset({"admin"})


async def _make_endpoint(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    created = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": "https://93.184.215.14/hook", "events": ["flag.created"]},
    )
    assert created.status_code == 201, created.text
    ping = await client.post(
        f"/v1/webhook-endpoints/{created.json()['id']}/ping", headers=world["admin_a"].headers
    )
    return {"endpoint_id": created.json()["id"], "delivery_id": ping.json()["delivery_id"]}


def _admin_rule(body: Callable[[], dict[str, object]] | None = None) -> Rule:
    return Rule(allowed=ADMIN, prepare=_make_endpoint, refused=404, body=body)


async def _make_provider(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    """A provider of organization A of their own, so closing their account ends nobody's test."""
    body = {
        "email": f"{uuid.uuid4().hex[:12]}@a.example",
        "name": "Short Stay",
        "password": "a long password",
    }
    created = await client.post("/v1/providers", headers=world["admin_a"].headers, json=body)
    assert created.status_code == 201, created.text
    return {"user_id": created.json()["id"]}


# One rule for every route that takes a patient id or another resource id.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/v1/patients/{patient_id}"): Rule(),
    ("PATCH", "/v1/patients/{patient_id}"): Rule(body=lambda: {"timezone": "America/New_York"}),
    ("GET", "/v1/patients/{patient_id}/regimens"): Rule(),
    ("POST", "/v1/patients/{patient_id}/regimens"): Rule(
        allowed=frozenset({"provider", "admin"}),
        body=lambda: {"schedule": [{"time": "08:00", "dose_mg": 300}], "start_date": "2026-01-01"},
    ),
    **{("GET", f"/v1/patients/{{patient_id}}/{kind}"): Rule() for kind in ENTRY_BODIES},
    **{
        ("POST", f"/v1/patients/{{patient_id}}/{kind}"): Rule(body=body)
        for kind, body in ENTRY_BODIES.items()
    },
    **{
        ("DELETE", f"/v1/patients/{{patient_id}}/{kind}/{{entry_id}}"): Rule(prepare=_entry_maker(kind, body))
        for kind, body in ENTRY_BODIES.items()
    },
    ("GET", "/v1/patients/{patient_id}/flags"): Rule(),
    ("GET", "/v1/flags/{flag_id}"): Rule(prepare=_make_flag),
    ("POST", "/v1/flags/{flag_id}/acknowledge"): Rule(allowed=STAFF, prepare=_make_flag, body=lambda: {}),
    ("POST", "/v1/flags/{flag_id}/resolve"): Rule(
        allowed=STAFF, prepare=_make_flag, body=lambda: {"note": "called the patient"}
    ),
    ("GET", "/v1/patients/{patient_id}/summary"): Rule(),
    ("GET", "/v1/patients/{patient_id}/report"): Rule(),
    # Right of access: the patient downloads their own record too (API.md).
    ("GET", "/v1/patients/{patient_id}/export.csv"): Rule(),
    ("GET", "/v1/patients/{patient_id}/fhir"): Rule(),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}"): _admin_rule(),
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): _admin_rule(body=lambda: {"description": "pager"}),
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): _admin_rule(),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): _admin_rule(),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/ping"): _admin_rule(),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): _admin_rule(),
    # A fresh delivery is pending: the admin gets through to a 409 (only dead or failed ones retry).
    ("POST", "/v1/webhook-deliveries/{delivery_id}/retry"): _admin_rule(),
    # Accounts are an admin's to see: everyone else gets 404, as for an unknown id.
    ("POST", "/v1/users/{user_id}/deactivate"): Rule(allowed=ADMIN, prepare=_make_provider, refused=404),
    ("POST", "/v1/users/{user_id}/reactivate"): Rule(allowed=ADMIN, prepare=_make_provider, refused=404),
}

INSIDERS = {"patient": "patient_a", "provider": "provider_a", "admin": "admin_a"}
OUTSIDERS = ["patient_a2", "provider_a2", "admin_b", "provider_b", "patient_b"]


def _api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation the app serves, from its own OpenAPI document."""
    paths = app.openapi()["paths"]
    routes = sorted((method.upper(), path) for path, item in paths.items() for method in item)
    assert len(routes) >= 10, routes
    return routes


def _fill(path: str, world: World, extra: dict[str, str] | None = None) -> str:
    path = path.replace("{patient_id}", str(world["patient_a"].patient_id))
    for name, value in (extra or {}).items():
        path = path.replace("{" + name + "}", value)
    # Ids a test did not prepare name nothing: the route must still refuse the caller first.
    for name in ("entry_id", "flag_id", "endpoint_id", "delivery_id", "user_id"):
        path = path.replace("{" + name + "}", str(uuid.UUID(int=1)))
    return path


async def _call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, object] | None = None,
) -> httpx.Response:
    return await client.request(method, path, headers=headers, json=body)


def test_every_route_with_an_id_has_an_access_rule(app: FastAPI) -> None:
    missing = [
        f"{method} {path}" for method, path in _api_routes(app) if "{" in path and (method, path) not in RULES
    ]
    assert not missing, f"routes with ids but no access rule in this test: {missing}"


async def test_insiders_get_through_and_outsiders_get_404(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    for (method, template), rule in RULES.items():
        for role, name in INSIDERS.items():
            path = _fill(template, world, await rule.prepare(client, world) if rule.prepare else None)
            body = rule.body() if rule.body else None
            response = await _call(client, method, path, world[name].headers, body)
            expected = "through" if role in rule.allowed else str(rule.refused)
            through = response.status_code < 500 and response.status_code not in (401, 403, 404)
            ok = through if role in rule.allowed else response.status_code == rule.refused
            assert ok, f"{name} on {method} {template}: {response.status_code}, expected {expected}"
        path = _fill(template, world, await rule.prepare(client, world) if rule.prepare else None)
        for name in OUTSIDERS:
            body = rule.body() if rule.body else None
            response = await _call(client, method, path, world[name].headers, body)
            assert response.status_code == 404, f"{name} on {method} {template}: {response.status_code}"
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_unknown_and_malformed_ids_are_404(client: httpx.AsyncClient, world: World) -> None:
    for ref in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = await client.get(f"/v1/patients/{ref}", headers=world["admin_a"].headers)
        assert response.status_code == 404
    # `me` names nobody for staff.
    assert (await client.get("/v1/patients/me", headers=world["provider_a"].headers)).status_code == 404


def _bad_tokens(app: FastAPI, world: World) -> dict[str, str]:
    secret = app.state.settings.secret_key
    good = world["admin_a"].access_token
    claims = jwt.decode(good, options={"verify_signature": False})
    expired = jwt.encode(
        {**claims, "iat": int(time.time()) - 3600, "exp": int(time.time()) - 60}, secret, algorithm="HS256"
    )
    header, payload, signature = good.split(".")
    other_key = jwt.encode(
        {**claims, "sub": str(world["admin_b"].user_id)}, "another-key-" + "x" * 32, algorithm="HS256"
    )
    return {
        "expired": expired,
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "signed with another key": other_key,
        "garbage": "not-a-jwt",
        "unsigned": f"{header}.{payload}.",
        "alg none": jwt.encode(claims, None, algorithm="none"),
    }


async def test_every_private_route_refuses_requests_without_a_valid_token(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    bad_tokens = _bad_tokens(app, world)
    private = [(m, p) for m, p in _api_routes(app) if (m, p) not in PUBLIC_ROUTES]
    assert private, "the app has private routes"
    for method, template in private:
        path = _fill(template, world)
        response = await client.request(method, path)
        assert response.status_code == 401, f"no token on {method} {template}: {response.status_code}"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"].startswith("application/problem+json")
        for label, token in bad_tokens.items():
            response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (
                f"{label} token on {method} {template}: {response.status_code}"
            )


async def test_revoked_tokens_are_refused_everywhere(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    admin = world["admin_a"]
    assert (await client.post("/v1/auth/logout", headers=admin.headers)).status_code == 204
    for method, template in _api_routes(app):
        if (method, template) in PUBLIC_ROUTES:
            continue
        response = await client.request(method, _fill(template, world), headers=admin.headers)
        assert response.status_code == 401, f"revoked token on {method} {template}: {response.status_code}"


@pytest.mark.parametrize("name", ["patient_a", "provider_a", "admin_a"])
async def test_staff_only_lists_refuse_patients(client: httpx.AsyncClient, world: World, name: str) -> None:
    response = await client.get("/v1/patients", headers=world[name].headers)
    assert response.status_code == (403 if name == "patient_a" else 200)
