"""GET /metrics shows service-wide counts (open flags by rule): a bearer token when one is configured,
else loopback clients only, and never a request a proxy passed on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from services.settings import Settings
from tests.databases import settings_for
from tests.test_problems import assert_problem

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database

TOKEN = "metrics-token-0123456789abcdef"
LOOPBACK, REMOTE = ("127.0.0.1", 40000), ("203.0.113.7", 40000)

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def metrics_client(settings: Settings) -> Client:
    @asynccontextmanager
    async def client(address: tuple[str, int], token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
        configured = settings.model_copy(update={"metrics_token": SecretStr(token) if token else None})
        app = create_app(configured)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=address)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield http

    return client


async def test_without_a_token_only_loopback_clients_read_metrics(metrics_client: Client) -> None:
    async with metrics_client(LOOPBACK) as local:
        assert (await local.get("/metrics")).status_code == 200
        # Through a proxy on the same machine the client is someone else: as if there were no route.
        proxied = await local.get("/metrics", headers={"x-forwarded-for": "198.51.100.4"})
        assert assert_problem(proxied, 404)["detail"] == "No such resource."
        assert_problem(await local.get("/metrics", headers={"forwarded": "for=198.51.100.4"}), 404)
    for address in (REMOTE, ("10.0.0.8", 1), ("::ffff:10.0.0.8", 1)):
        async with metrics_client(address) as remote:
            answer = await remote.get("/metrics")
            assert assert_problem(answer, 404) == assert_problem(await remote.get("/nothing-here"), 404)
            assert "symptrack_flags" not in answer.text
    async with metrics_client(("::1", 1)) as local6:
        assert (await local6.get("/metrics")).status_code == 200


async def test_with_a_token_every_client_needs_it(metrics_client: Client) -> None:
    for address in (LOOPBACK, REMOTE):
        async with metrics_client(address, TOKEN) as http:
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}):
                refused = await http.get("/metrics", headers=headers)
                assert_problem(refused, 401)
                assert refused.headers["www-authenticate"] == "Bearer"
                assert "symptrack_flags" not in refused.text
            allowed = await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
            assert allowed.status_code == 200 and "symptrack_outbox_lag_seconds" in allowed.text


def test_the_metrics_token_setting() -> None:
    assert settings_for("sqlite://", metrics_token="").metrics_token is None  # empty: unset
    with pytest.raises(ValueError, match="at least 16"):
        settings_for("sqlite://", metrics_token="short")
    assert TOKEN not in repr(settings_for("sqlite://", metrics_token=TOKEN))


async def test_openapi_says_how_metrics_are_protected(metrics_client: Client) -> None:
    async with metrics_client(LOOPBACK) as http:
        operation = (await http.get("/openapi.json")).json()["paths"]["/metrics"]["get"]
    assert "SYMPTRACK_METRICS_TOKEN" in operation["description"]
    assert "loopback" in operation["description"]
    assert {"401", "404"} <= set(operation["responses"])
