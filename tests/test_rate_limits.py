"""Rate limits and the sign-in throttle hold across API processes: counters live in a shared store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from services.settings import Settings
from tests.databases import in_ci, settings_for
from tests.test_cli import SYMPTRACK
from tests.world import World

REDIS_URL = os.environ.get("SYMPTRACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Test users have the same emails in every run: each run counts under keys of its own.
REDIS_PREFIX = f"symptrack-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url, rate_limit_per_token_per_minute=5, rate_limit_per_address_per_minute=12)


async def test_a_token_over_its_limit_gets_429_with_retry_after(
    client: httpx.AsyncClient, world: World
) -> None:
    answers = [await client.get("/v1/me", headers=world["admin_a"].headers) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    limited = answers[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert 0 < int(limited.headers["retry-after"]) <= 60
    # Another token from the same address still gets through, until the address's own limit.
    others = [await client.get("/v1/me", headers=world["provider_a"].headers) for _ in range(5)]
    assert [a.status_code for a in others] == [200] * 5
    third = await client.get("/v1/me", headers=world["patient_a"].headers)
    assert third.status_code == 200
    over_address = await client.get("/v1/me", headers=world["patient_b"].headers)
    assert over_address.status_code == 429
    assert (await client.get("/healthz")).status_code == 200  # probes are never limited


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(database_url: str, extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "SYMPTRACK_REDIS_URL"}
    env = {
        **inherited,
        "SYMPTRACK_DATABASE_URL": database_url,
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_SECRET_KEY": settings_for(database_url).secret_key,
        "SYMPTRACK_RATE_LIMIT_PER_TOKEN_PER_MINUTE": "6",
        "SYMPTRACK_LOG_LEVEL": "WARNING",
        "SYMPTRACK_SHUTDOWN_GRACE_SECONDS": "0",  # no balancer to drain from: stop at once
        **extra,
    }
    process = subprocess.Popen(
        [SYMPTRACK, "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("symptrack serve did not start")


@pytest.fixture
def two_processes(request: pytest.FixtureRequest, database_url: str) -> Iterator[list[str]]:
    extra: dict[str, str] = getattr(request, "param", {})
    started = [_serve(database_url, extra) for _ in range(2)]
    yield [base for _, base in started]
    for process, _ in started:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def _exercise_shared_limits(bases: list[str], world: World) -> None:
    headers = world["provider_a"].headers
    codes = [httpx.get(f"{bases[i % 2]}/v1/me", headers=headers).status_code for i in range(8)]
    assert codes == [200] * 6 + [429, 429], codes
    # The sign-in throttle too: five failures spread over both processes lock the account in both.
    form = {"username": "admin_a@a.example", "password": "not the password"}
    failures = [httpx.post(f"{bases[i % 2]}/v1/auth/token", data=form).status_code for i in range(5)]
    assert failures == [401] * 5
    assert httpx.post(f"{bases[0]}/v1/auth/token", data=form).status_code == 429
    assert httpx.post(f"{bases[1]}/v1/auth/token", data=form).status_code == 429


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if in_ci():
            pytest.fail(f"CI=true and Redis at {REDIS_URL} is not reachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    "two_processes",
    [{"SYMPTRACK_REDIS_URL": REDIS_URL, "SYMPTRACK_REDIS_KEY_PREFIX": REDIS_PREFIX}],
    indirect=True,
)
async def test_limits_hold_across_two_processes_with_redis(world: World, two_processes: list[str]) -> None:
    _redis_or_skip()
    _exercise_shared_limits(two_processes, world)
    client = redis.Redis.from_url(REDIS_URL)
    keys = client.keys(f"{REDIS_PREFIX}counter:*")
    assert keys, "the counters live in Redis"
    assert not any(b"@" in key for key in keys), "keys are hashes, never emails or tokens"
    client.delete(*keys)
