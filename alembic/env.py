"""Alembic environment: the URL comes from the symptrack settings, the target from SQLModel.metadata.

Migrations run with sync drivers (sqlite, psycopg); SQLite gets batch mode so ALTERs work.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from sqlalchemy import engine_from_config, pool

import models  # noqa: F401 - registers every table
from alembic import context
from models.base import UTCDateTime, metadata
from services.platform.migrations import sync_database_url
from services.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

url = config.attributes.get("database_url") or get_settings().database_url
config.set_main_option("sqlalchemy.url", sync_database_url(url).replace("%", "%%"))


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import models.base")
        return "models.base.UTCDateTime()"
    return False


def _configure(**kwargs: Any) -> None:
    is_sqlite = config.get_main_option("sqlalchemy.url", "").startswith("sqlite")
    context.configure(
        target_metadata=metadata,
        render_as_batch=is_sqlite,
        render_item=render_item,
        compare_type=True,
        compare_server_default=True,
        # Each migration commits on its own, with its revision: one that builds an index concurrently
        # (services/platform/index_builds.py) must commit what came before, and a failure leaves the
        # database at the last revision that finished, from where `symptrack migrate` goes on.
        transaction_per_migration=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _configure(connection=connectable)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
