"""A refused CORS preflight is an RFC 9457 problem like every other 4xx, not a bare 400 (issue 25, 7c)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from services.settings import Settings
from tests.test_problems import assert_problem

pytestmark = pytest.mark.one_database

ALLOWED = "https://app.example"


@pytest.fixture
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update={"cors_origins": [ALLOWED]}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def _preflight(origin: str, method: str = "GET", headers: str | None = None) -> dict[str, str]:
    sent = {"origin": origin, "access-control-request-method": method}
    if headers:
        sent["access-control-request-headers"] = headers
    return sent


async def test_refused_preflights_are_problems(cors_client: httpx.AsyncClient) -> None:
    for sent, refused in (
        (_preflight("https://evil.example"), "origin"),
        (_preflight(ALLOWED, "PUT"), "method"),
        (_preflight(ALLOWED, "GET", "x-custom"), "headers"),
    ):
        answer = await cors_client.options("/v1/me", headers=sent)
        problem = assert_problem(answer, 400)
        assert refused in str(problem["detail"]) and "evil" not in str(problem["detail"])
        assert problem["type"] == "urn:symptrack:problem:cors-refused"
        assert "access-control-allow-origin" not in answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"  # the other middleware still apply


async def test_allowed_preflights_still_pass(cors_client: httpx.AsyncClient) -> None:
    answer = await cors_client.options("/v1/me", headers=_preflight(ALLOWED, "GET", "authorization"))
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
