"""Fixtures: every database test runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from api.app import create_app
from api.observability import quiet_chatty_loggers
from services.settings import Settings
from tests.databases import (
    PostgresDatabases,
    copy_sqlite,
    migrated_sqlite_template,
    postgres_unavailable_reason,
    require_postgres,
    settings_for,
)
from tests.log_guard import ParameterDumpGuard
from tests.receiver import Receiver
from tests.world import World, build_world

BACKENDS = ["sqlite", "postgresql"]


def _run_and_worker_id() -> str:
    # Unique per test run and per xdist worker, so concurrent runs on one server never collide.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:10] or str(os.getpid())
    return f"{run}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(autouse=True)
def no_sql_parameters_in_logs() -> Iterator[None]:
    """Every test fails if any log record it caused holds an SQL parameter dump (tests/log_guard.py).
    Logging is as in production: INFO, with the database drivers' loggers capped at WARNING."""
    guard = ParameterDumpGuard()
    root = logging.getLogger()
    level = root.level
    quiet_chatty_loggers()
    root.setLevel(min(level, logging.INFO))
    root.addHandler(guard)
    try:
        yield
    finally:
        root.removeHandler(guard)
        root.setLevel(level)
    if guard.offences:
        pytest.fail("SQL parameters reached the log:\n" + "\n".join(guard.offences[:10]), pytrace=False)


# The same Argon2 code with its smallest parameters: a hash costs a millisecond instead of a fifth of a
# second of CPU, and tests hash and verify hundreds of times. Verification takes the parameters from
# the stored hash, so hashes made by the command (full cost) still verify.
CHEAP_PASSWORD_HASH = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.accounts.passwords._hasher", lambda: CHEAP_PASSWORD_HASH)


@pytest.fixture(scope="session")
def postgres_unavailable() -> str | None:
    return postgres_unavailable_reason()


@pytest.fixture(scope="session")
def postgres(postgres_unavailable: str | None) -> PostgresDatabases:
    require_postgres(postgres_unavailable)
    return PostgresDatabases(_run_and_worker_id())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_migrated_url(postgres: PostgresDatabases) -> Iterator[str]:
    from services.platform import migrations

    name = postgres.name()
    url = postgres.recreate(name)
    migrations.upgrade(settings_for(url))
    yield url
    postgres.drop(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.hookimpl(tryfirst=True)  # before the fixture's own params are applied
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Database tests run on both databases; a test marked `one_database`, whose behaviour no
    database can change (validation, HTTP shapes, throttling in memory), runs on PostgreSQL only."""
    if "backend" not in metafunc.fixturenames or not metafunc.definition.get_closest_marker("one_database"):
        return
    chosen = any(
        marker.name == "parametrize" and "backend" in str(marker.args[0])
        for marker in metafunc.definition.iter_markers()
    )
    if not chosen:
        metafunc.parametrize("backend", ["postgresql"])


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database for this test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return copy_sqlite(template, tmp_path / "test.db")
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    url: str = request.getfixturevalue("postgres_migrated_url")
    postgres.empty(url)
    return url


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even the migrations."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    name = postgres.name("_empty")
    yield postgres.recreate(name)
    postgres.drop(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def world(app: FastAPI) -> World:
    return await build_world(app)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback that verifies every request with standardwebhooks."""
    server = Receiver().start()
    yield server
    server.stop()
