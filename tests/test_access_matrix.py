"""Who sees what, for every route the app has.

The routes come from the app itself: a new route with a path parameter and no rule here fails
`test_every_route_with_an_id_has_an_access_rule`, and a new route that answers without a token fails
`test_every_private_route_refuses_requests_without_a_valid_token`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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
}

ALL_ROLES = frozenset({"patient", "provider", "admin"})


@dataclass(frozen=True)
class Rule:
    """Which of the patient's own circle may use the route (the rest of the circle gets 403), and a
    body that is valid for it."""

    allowed: frozenset[str] = ALL_ROLES
    body: Callable[[], dict[str, object]] | None = None


# One rule for every route that takes a patient id or another resource id.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/v1/patients/{patient_id}"): Rule(),
    ("PATCH", "/v1/patients/{patient_id}"): Rule(body=lambda: {"timezone": "Europe/Paris"}),
}

INSIDERS = {"patient": "patient_a", "provider": "provider_a", "admin": "admin_a"}
OUTSIDERS = ["patient_a2", "provider_a2", "admin_b", "provider_b", "patient_b"]


def _api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation the app serves, from its own OpenAPI document."""
    paths = app.openapi()["paths"]
    routes = sorted((method.upper(), path) for path, item in paths.items() for method in item)
    assert len(routes) >= 10, routes
    return routes


def _fill(path: str, world: World) -> str:
    return path.replace("{patient_id}", str(world["patient_a"].patient_id))


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
        path = _fill(template, world)
        for role, name in INSIDERS.items():
            body = rule.body() if rule.body else None
            response = await _call(client, method, path, world[name].headers, body)
            expected = "2xx" if role in rule.allowed else "403"
            ok = response.is_success if role in rule.allowed else response.status_code == 403
            assert ok, f"{name} on {method} {template}: {response.status_code}, expected {expected}"
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
