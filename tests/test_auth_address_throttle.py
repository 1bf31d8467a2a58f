"""Failed sign-ins from one client address are throttled across accounts."""

from __future__ import annotations

import httpx
import pytest

from services.settings import Settings
from tests.databases import settings_for

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A low per-address limit, so one test can reach it with a handful of attempts.
    return settings_for(database_url, login_max_failures_per_address=4)


async def test_repeated_failures_from_one_address_are_throttled(client: httpx.AsyncClient) -> None:
    for i in range(4):
        assert (
            await client.post("/v1/auth/token", data=_form(f"guess{i}@a.example", "wrong password"))
        ).status_code == 401
    response = await client.post("/v1/auth/token", data=_form("guess-next@a.example", "wrong password"))
    assert response.status_code == 429 and int(response.headers["retry-after"]) > 0


def _form(username: str, password: str) -> dict[str, str]:
    return {"username": username, "password": password}
