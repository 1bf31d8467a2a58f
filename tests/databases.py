"""Test databases: a clean one per test, on SQLite always and on PostgreSQL when one answers.

SQLite: a migrated template file, copied for each test. PostgreSQL: one database per pytest-xdist
worker, migrated once, emptied (DELETE) before each test. The suite creates and drops its databases
through the server's `postgres` database, which every PostgreSQL has: nothing else need exist there.
`CI=true` turns a missing PostgreSQL into a failure instead of a skip, so CI can never pass on SQLite
alone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import models
from services.platform import migrations
from services.settings import Settings

# The server the tests use; its database is only where the suite connects to create its own (a stock
# server's `postgres`; with none in the URL, `postgres` too).
DEFAULT_TEST_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
MAINTENANCE_DATABASE = "postgres"
# A production-grade signing key for tests that build production settings (secrets.token_urlsafe(48)).
STRONG_KEY = "Li6Ci9avh1i-0oOirkss-XmfjaZWCy1u5UbY4tw68V1XHeTLpAFI4jZscKc1YU_7"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def postgres_server_url() -> str:
    return os.environ.get("SYMPTRACK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)


def _libpq_conninfo(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def admin_conninfo(server_url: str) -> str:
    """Where databases are created and dropped: the URL's database, else the server's `postgres`."""
    return _libpq_conninfo(server_url, make_url(server_url).database or MAINTENANCE_DATABASE)


def postgres_unavailable_reason() -> str | None:
    try:
        with psycopg.connect(admin_conninfo(postgres_server_url()), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {make_url(postgres_server_url()).render_as_string()} is not reachable: {exc}"


def require_postgres(unavailable: str | None) -> None:
    """Skip a PostgreSQL test when no server answers; fail it instead under CI=true."""
    if unavailable is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and {unavailable}", pytrace=False)
    pytest.skip(unavailable)


def settings_for(database_url: str, **overrides: object) -> Settings:
    """Development settings on `database_url`. Reading them (every SYMPTRACK_ variable, every
    validator) costs milliseconds, paid by nearly every test: the same overrides under the same
    environment are read once and copied, with this test's database. In development no validator
    looks at the URL; other environments are read afresh each time."""
    if "environment" not in overrides:
        try:
            return _read_once(_key(overrides), _environment()).model_copy(
                update={"database_url": database_url}, deep=True
            )
        except TypeError:  # an override that cannot be a key (a list): read afresh
            pass
    return _read(database_url, overrides)


def _read(database_url: str, overrides: dict[str, object]) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "environment": "development",
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _key(overrides: dict[str, object]) -> tuple[tuple[str, object], ...]:
    key = tuple(sorted(overrides.items()))
    hash(key)  # TypeError when a value is not hashable
    return key


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("SYMPTRACK_")))


@lru_cache(maxsize=128)
def _read_once(key: tuple[tuple[str, object], ...], _environment: tuple[tuple[str, str], ...]) -> Settings:
    return _read(DEFAULT_TEST_POSTGRES_URL, dict(key))


def tables_to_empty() -> list[str]:
    return [table.name for table in models.metadata.sorted_tables]


@dataclass
class PostgresDatabases:
    """Creates and drops databases on the test server, named for this xdist worker."""

    worker: str

    def name(self, suffix: str = "") -> str:
        return f"symptrack_test_{self.worker}{suffix}"

    def url(self, database: str) -> str:
        return make_url(postgres_server_url()).set(database=database).render_as_string(hide_password=False)

    def recreate(self, database: str) -> str:
        with psycopg.connect(admin_conninfo(postgres_server_url()), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return self.url(database)

    def drop(self, database: str) -> None:
        with psycopg.connect(admin_conninfo(postgres_server_url()), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))

    def empty(self, database_url: str) -> None:
        # DELETE, children first: a test leaves a few rows, and deleting them takes a millisecond where
        # TRUNCATE (new files for every table and index) took a few hundred on a busy server. No table
        # has a sequence to restart (the keys are UUIDs).
        statements = "; ".join(f'DELETE FROM "{name}"' for name in reversed(tables_to_empty()))
        if not statements:
            return
        with psycopg.connect(_libpq_conninfo(database_url), autocommit=True) as conn:
            conn.execute(statements)  # type: ignore[arg-type]


def migrated_sqlite_template(folder: Path) -> Path:
    template = folder / "template.db"
    url = f"sqlite+aiosqlite:///{template}"
    migrations.upgrade(settings_for(url))
    # Fold the WAL into the main file so a plain copy carries everything.
    engine = create_engine(f"sqlite:///{template}")
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return template


def copy_sqlite(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"
