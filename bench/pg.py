"""The bench's own PostgreSQL database: created for one run, migrated by `symptrack migrate`, dropped.

Only databases whose names start with the bench prefix are ever created or dropped here.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.config import ROOT, BenchConfig


@dataclass(frozen=True)
class BenchDatabase:
    server_url: str  # postgresql://user@host:port, no database
    name: str

    @property
    def url(self) -> str:
        """For asyncpg."""
        return f"{self.server_url}/{self.name}"

    @property
    def app_url(self) -> str:
        """For the app (SQLAlchemy with asyncpg)."""
        return self.url.replace("postgresql://", "postgresql+asyncpg://", 1)

    @property
    def sync_url(self) -> str:
        """For the tutorial baseline (SQLAlchemy with psycopg, sync)."""
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1)


def new_database_name(config: BenchConfig) -> str:
    return f"{config.database_prefix}{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"


async def create(config: BenchConfig) -> BenchDatabase:
    database = BenchDatabase(config.postgres_url, new_database_name(config))
    connection = await asyncpg.connect(f"{config.postgres_url}/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{database.name}"')
    finally:
        await connection.close()
    return database


async def drop(config: BenchConfig, database: BenchDatabase) -> None:
    if not database.name.startswith(config.database_prefix):
        raise ValueError(f"refusing to drop {database.name!r}: not a bench database")
    connection = await asyncpg.connect(f"{config.postgres_url}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    finally:
        await connection.close()


def symptrack_command(config: BenchConfig) -> list[str]:
    """The installed `symptrack` command of the venv the bench runs in."""
    script = Path(config.python).parent / "symptrack"
    return [str(script)] if script.exists() else [config.python, "-m", "api.cli"]


def migrate(config: BenchConfig, database: BenchDatabase, env: dict[str, str]) -> None:
    """The schema exactly as production gets it: `symptrack migrate`."""
    subprocess.run(
        [*symptrack_command(config), "migrate"],
        cwd=ROOT,
        env={**env, "SYMPTRACK_DATABASE_URL": database.app_url},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def analyze(database: BenchDatabase) -> None:
    """Fresh statistics after a bulk load, as autovacuum would give a real database in time."""
    connection = await asyncpg.connect(database.url)
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


async def server_version(config: BenchConfig) -> str:
    connection = await asyncpg.connect(f"{config.postgres_url}/postgres")
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()
