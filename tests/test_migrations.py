"""`upgrade head` on an empty database gives exactly the models' schema; `downgrade base` undoes it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import models
from services.platform import migrations
from services.platform.migrations import head_revisions, sync_database_url
from tests.databases import settings_for


def _schema_drift(database_url: str) -> list[object]:
    engine = create_engine(sync_database_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, models.metadata))
    finally:
        engine.dispose()


def _tables(database_url: str) -> set[str]:
    engine = create_engine(sync_database_url(database_url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_matches_the_models_without_drift(empty_database_url: str) -> None:
    settings = settings_for(empty_database_url)
    migrations.upgrade(settings)
    assert _schema_drift(empty_database_url) == []
    assert {t.name for t in models.metadata.sorted_tables} <= _tables(empty_database_url)


def test_downgrade_base_removes_everything_and_upgrade_again_works(empty_database_url: str) -> None:
    settings = settings_for(empty_database_url)
    migrations.upgrade(settings)
    migrations.downgrade(settings, "base")
    assert _tables(empty_database_url) <= {"alembic_version"}
    migrations.upgrade(settings)
    assert _schema_drift(empty_database_url) == []


def test_there_is_a_single_head() -> None:
    settings = settings_for("sqlite+aiosqlite:///unused.db")
    assert len(head_revisions(settings.migrations_dir)) == 1
