"""A signed-in route declares one dependency with nothing nested in it (FastAPI solves nested ones
again wherever they are declared: five of them were a quarter of a dose's CPU), and the OpenAPI
document still says what the nested ones said: the bearer scheme and the `patient_id` parameter."""

from __future__ import annotations

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security.base import SecurityBase

from api.app import create_app
from tests.databases import settings_for

PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/auth/token",
    "/v1/auth/refresh",
    "/v1/auth/enroll",
    "/v1/catalog",
    "/docs",
    "/docs/oauth2-redirect",
    "/openapi.json",
}


def test_a_signed_in_route_solves_one_dependency_with_nothing_inside_and_documents_the_rest() -> None:
    app = create_app(settings_for("sqlite+aiosqlite:///:memory:"))  # never started: no database
    paths = app.openapi()["paths"]
    routes = [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]
    signed_in = [c for c in routes if c.path not in PUBLIC]
    assert len(signed_in) >= 45
    for route in signed_in:
        dependencies = route.dependant.dependencies
        assert len({d.call for d in dependencies}) == 1, route.path  # the router's and the route's: one
        (call,) = {d.call for d in dependencies}
        assert isinstance(call, SecurityBase), route.path
        assert all(d.dependencies == [] for d in dependencies), route.path
        for method in route.methods:
            operation = paths[route.path_format][method.lower()]
            assert operation["security"] == [{"OAuth2PasswordBearer": []}], route.path
            if route.path.startswith("/v1/patients/{patient_id}"):
                (patient_id,) = [p for p in operation["parameters"] if p["name"] == "patient_id"]
                assert patient_id["in"] == "path" and patient_id["required"] is True
                assert patient_id["description"] == "A patient id, or `me` for the caller's own"
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes == {
        "OAuth2PasswordBearer": {
            "type": "oauth2",
            "flows": {"password": {"scopes": {}, "tokenUrl": "/v1/auth/token"}},
        }
    }
