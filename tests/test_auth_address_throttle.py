"""Failed sign-ins from one client address are throttled across accounts."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.accounts.throttle import address_key
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


def _client_at(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _guess(app: FastAPI, host: str, index: int) -> int:
    async with _client_at(app, host) as http:
        answer = await http.post("/v1/auth/token", data=_form(f"guess{index}@a.example", "wrong password"))
        return answer.status_code


async def test_ipv6_addresses_are_counted_by_their_64(app: FastAPI) -> None:
    """One attacker's /64 holds 2**64 addresses: each guess from a new one is still the same client."""
    for index in range(4):
        assert await _guess(app, f"2001:db8:1:2::{index + 1:x}", index) == 401
    assert await _guess(app, "2001:db8:1:2:ffff:ffff:ffff:ffff", 9) == 429
    assert await _guess(app, "2001:db8:1:3::1", 10) == 401  # the next /64 is someone else


async def test_ipv4_addresses_stay_exact_and_mapped_ones_count_as_ipv4(app: FastAPI) -> None:
    for index in range(2):
        assert await _guess(app, "198.51.100.7", index) == 401
    for index in range(2, 4):
        assert await _guess(app, "::ffff:198.51.100.7", index) == 401
    assert await _guess(app, "198.51.100.7", 5) == 429
    assert await _guess(app, "198.51.100.8", 6) == 401


def test_address_keys() -> None:
    assert (
        address_key("2001:db8:1:2:aaaa::1") == address_key("2001:0db8:0001:0002::ffff") == "2001:db8:1:2::/64"
    )
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7" == address_key("203.0.113.7")
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("testclient") == "testclient"
