"""Health and readiness probes, and the documentation routes."""

from __future__ import annotations

import httpx

from api.app import create_app
from tests.databases import settings_for


async def _get(database_url: str, path: str) -> httpx.Response:
    app = create_app(settings_for(database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ok_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_readyz_is_503_before_migrations(empty_database_url: str) -> None:
    response = await _get(empty_database_url, "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "not migrated"


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1; connecting is refused at once.
    response = await _get("postgresql+asyncpg://nobody@127.0.0.1:1/none", "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"


async def test_docs_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/healthz" in paths and "/readyz" in paths
    for path_item in paths.values():
        for operation in path_item.values():
            assert operation.get("summary"), "every route documents a summary"
