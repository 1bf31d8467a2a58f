"""Running Alembic from code, and asking whether a database is at the head revision."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool, text
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


class MigrationRefused(Exception):
    """A move between revisions that will not be made; the message says why and what to do instead."""


@dataclass(frozen=True)
class Move:
    """Where `migrate_to` found the database and where it left it (None: no schema, "base")."""

    before: str | None
    after: str | None
    head: str

    def describe(self) -> str:
        def name(revision: str | None) -> str:
            return "base" if revision is None else f"{revision} (head)" if revision == self.head else revision

        if self.before == self.after:
            return f"database already at {name(self.after)}"
        return f"database migrated from {name(self.before)} to {name(self.after)}"


def current_revision(settings: Settings, database_url: str | None = None) -> str | None:
    """The one revision the database is at; None when it has no schema."""
    engine = create_engine(sync_database_url(database_url or settings.database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    if len(heads) > 1:
        raise MigrationRefused(f"the database is at several revisions at once ({', '.join(heads)})")
    return heads[0] if heads else None


def migrate_to(settings: Settings, target: str = "head", database_url: str | None = None) -> Move:
    """Upgrades or downgrades the database to `target`: a revision id, "head" or "base" (no schema).
    Each migration commits on its own, so a refusal or failure on the way leaves the database at the
    last revision reached, which the MigrationRefused message names."""
    url = database_url or settings.database_url
    config = alembic_config(settings, url)
    script = ScriptDirectory.from_config(config)
    order = [revision.revision for revision in reversed(list(script.walk_revisions()))]  # base first
    head = order[-1]
    wanted = _resolve(script, target, order)
    ensure_sqlite_folder(url)
    before = current_revision(settings, url)
    if before is not None and before not in order:
        raise MigrationRefused(
            f"the database is at revision {before}, which this version of symptrack does not know: "
            f"a newer release migrated it; that release's `symptrack migrate --to {head}` brings it back here"
        )
    step = order.index(wanted) if wanted else -1
    now = order.index(before) if before else -1
    try:
        if step > now:
            command.upgrade(config, wanted or "base")
        elif step < now:
            command.downgrade(config, wanted or "base")
    except MigrationRefused as refused:
        reached = current_revision(settings, url) or "base"
        raise MigrationRefused(f"{refused} (the database is now at {reached})") from None
    return Move(before=before, after=current_revision(settings, url), head=head)


def _resolve(script: ScriptDirectory, target: str, order: list[str]) -> str | None:
    if target == "base":
        return None
    if target == "head":
        return order[-1]
    try:
        found = script.get_revision(target)
    except CommandError:  # unknown, ambiguous or malformed (get_revision raises them all as this)
        found = None
    if found is None or found.revision != target:
        raise MigrationRefused(
            f"unknown revision {target!r}: give head, base or one of {order[0]} to {order[-1]}"
        )
    return found.revision


@lru_cache
def head_revisions(migrations_dir: Path) -> frozenset[str]:
    return frozenset(_scripts(migrations_dir).get_heads())


@lru_cache
def known_revisions(migrations_dir: Path) -> frozenset[str]:
    """Every revision this release carries: one it does not know was written by a newer release."""
    return frozenset(script.revision for script in _scripts(migrations_dir).walk_revisions())


def _scripts(migrations_dir: Path) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return ScriptDirectory.from_config(config)


async def database_revisions(engine: AsyncEngine) -> frozenset[str] | None:
    """The revisions the database is at; None when it has never been migrated."""
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(row[0] for row in rows)
    except SQLAlchemyError:
        return None
