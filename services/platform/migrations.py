"""Running Alembic from code, and asking whether a database is at the head revision."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from services.database import ensure_sqlite_folder
from services.settings import Settings

_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def sync_database_url(url: str) -> str:
    """The same database through a sync driver, which is what Alembic runs on."""
    parsed = make_url(url)
    driver = _SYNC_DRIVERS.get(parsed.get_backend_name())
    if driver is None:
        raise ValueError(f"unsupported database backend: {parsed.get_backend_name()}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def alembic_config(settings: Settings, database_url: str | None = None) -> Config:
    migrations_dir = Path(settings.migrations_dir)
    ini = migrations_dir.parent / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["database_url"] = database_url or settings.database_url
    # Data migrations read keys from the same settings the app runs with (webhook secret encryption).
    config.attributes["settings"] = settings
    # The command line configures logging itself; don't let alembic.ini override it.
    config.attributes["configure_logging"] = False
    return config


def upgrade(settings: Settings, revision: str = "head", database_url: str | None = None) -> None:
    ensure_sqlite_folder(database_url or settings.database_url)
    command.upgrade(alembic_config(settings, database_url), revision)


def downgrade(settings: Settings, revision: str = "base", database_url: str | None = None) -> None:
    command.downgrade(alembic_config(settings, database_url), revision)


@lru_cache
def head_revisions(migrations_dir: Path) -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def database_revisions(engine: AsyncEngine) -> frozenset[str] | None:
    """The revisions the database is at; None when it has never been migrated."""
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(row[0] for row in rows)
    except SQLAlchemyError:
        return None
