"""Health and readiness probes, and the documentation routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

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


@asynccontextmanager
async def _database_at(database_url: str, revision: str) -> AsyncIterator[None]:
    """The database's recorded revision set to `revision` for the block, then put back (the per-test
    cleaning empties the tables of the models, not alembic_version)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            before = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            await connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        try:
            yield
        finally:
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": before})
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("revision", "status", "state"),
    [
        # The release being replaced, while the next one's migration has run: it keeps serving.
        ("f0f0f0f0next", 200, "ahead"),
        # A release newer than its database (migrate not run yet): not ready.
        ("0013", 503, "not at head"),
    ],
)
async def test_readyz_during_a_release(database_url: str, revision: str, status: int, state: str) -> None:
    async with _database_at(database_url, revision):
        response = await _get(database_url, "/readyz")
    assert response.status_code == status
    assert response.json()["checks"]["migrations"] == state


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
