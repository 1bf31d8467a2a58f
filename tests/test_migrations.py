"""`upgrade head` on an empty database gives exactly the models' schema; `downgrade base` undoes it;
`migrate_to` goes either way and says where it went; index builds on PostgreSQL survive a failure."""

from __future__ import annotations

import threading

import httpx
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import models
from services.platform import migrations
from services.platform.migrations import head_revisions, sync_database_url
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import check_in, day
from tests.world import World


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url, webhook_allow_http=True, webhook_allow_private_networks=True)


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


def test_migrate_to_goes_up_or_down_to_the_revision_and_says_where_it_went(empty_database_url: str) -> None:
    settings = settings_for(empty_database_url)
    up = migrations.migrate_to(settings, "0009")
    assert (up.before, up.after) == (None, "0009")
    assert up.describe() == "database migrated from base to 0009"
    head = migrations.migrate_to(settings, "head")
    assert (head.before, head.after) == ("0009", head.head)
    assert head.describe() == f"database migrated from 0009 to {head.head} (head)"
    down = migrations.migrate_to(settings, "0005")
    assert (down.before, down.after) == (head.head, "0005")
    assert "ix_anxiety_score_check_in_id" not in _indexes(empty_database_url, "anxiety_score")
    assert migrations.migrate_to(settings, "0005").describe() == "database already at 0005"
    with pytest.raises(
        migrations.MigrationRefused, match=r"unknown revision '0042': give head, base or one of"
    ):
        migrations.migrate_to(settings, "0042")
    assert migrations.current_revision(settings) == "0005"  # a refusal moves nothing
    assert migrations.migrate_to(settings, "base").describe() == "database migrated from 0005 to base"
    assert _tables(empty_database_url) <= {"alembic_version"}


def test_a_database_ahead_of_this_release_is_refused(empty_database_url: str) -> None:
    settings = settings_for(empty_database_url)
    migrations.upgrade(settings, "0001")
    engine = create_engine(sync_database_url(empty_database_url))
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    finally:
        engine.dispose()
    with pytest.raises(migrations.MigrationRefused, match=r"at revision 0099, which this .* not know"):
        migrations.migrate_to(settings, "0009")


def _indexes(database_url: str, table: str) -> set[str]:
    engine = create_engine(sync_database_url(database_url))
    try:
        return {str(index["name"]) for index in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


def _libpq(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _invalid_indexes(database_url: str) -> list[str]:
    with psycopg.connect(_libpq(database_url)) as connection:
        rows = connection.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid"
        )
        return [str(row[0]) for row in rows]


@pytest.mark.one_database
def test_a_concurrent_index_build_that_failed_is_finished_by_running_migrate_again(
    empty_database_url: str,
) -> None:
    """0006 builds its indexes CONCURRENTLY: it waits for a writer's open transaction instead of
    blocking writers. Cancelled there, it leaves an INVALID index and the revision at 0005; the next run
    drops the leftover and builds it again."""
    settings = settings_for(empty_database_url)
    migrations.upgrade(settings, "0005")
    # A writer's transaction on anxiety_score stays open: the build waits for its lock, cancelled after 0.5 s.
    impatient = make_url(empty_database_url).update_query_dict({"options": "-c lock_timeout=500"})
    writer_holds, release = threading.Event(), threading.Event()

    def writer() -> None:
        with psycopg.connect(_libpq(empty_database_url)) as connection:
            connection.execute("LOCK TABLE anxiety_score IN ROW EXCLUSIVE MODE")
            writer_holds.set()
            release.wait(timeout=60)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writer_holds.wait(timeout=30)
        with pytest.raises(OperationalError, match="lock timeout"):
            migrations.upgrade(settings, "0006", database_url=impatient.render_as_string(hide_password=False))
    finally:
        release.set()
        thread.join(timeout=30)
    assert _invalid_indexes(empty_database_url) == ["ix_anxiety_score_check_in_id"]
    assert migrations.current_revision(settings) == "0005"

    moved = migrations.migrate_to(settings)
    assert (moved.before, moved.after) == ("0005", moved.head)
    assert _invalid_indexes(empty_database_url) == []
    assert _schema_drift(empty_database_url) == []


def test_there_is_a_single_head() -> None:
    settings = settings_for("sqlite+aiosqlite:///unused.db")
    assert len(head_revisions(settings.migrations_dir)) == 1


async def test_0010_dates_existing_flags_by_their_evidence_and_rebuilds_their_history(
    app: FastAPI, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """A flag raised and acknowledged before 0010 gets observed_at from its evidence's own time and a
    history with the acknowledgement's note; an endpoint that heard flag.created hears the new events."""
    patient, provider = world["patient_a"], world["provider_a"]
    answer = await check_in(client, patient, day(0), red_flags={"seizure": True})
    [flag] = answer["flags"]
    await client.post(f"/v1/flags/{flag['id']}/acknowledge", headers=provider.headers, json={"note": "Seen."})
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": "http://127.0.0.1:9/hook", "events": ["flag.created"]},
    )
    assert endpoint.status_code == 201, endpoint.text
    await app.state.engine.dispose()
    migrations.downgrade(settings, "0009")
    migrations.upgrade(settings)
    after = (await client.get(f"/v1/flags/{flag['id']}", headers=provider.headers)).json()
    assert after["observed_at"] == after["last_observed_at"] == answer["check_in"]["submitted_at"]
    assert [(s["action"], s.get("note")) for s in after["history"]] == [
        ("created", None),
        ("acknowledged", "Seen."),
    ]
    assert after["history"][1]["by"] == str(provider.user_id)
    events = (await client.get("/v1/webhook-endpoints", headers=world["admin_a"].headers)).json()
    assert events[0]["events"] == ["flag.created", "flag.reopened", "flag.unacknowledged"]


async def test_0011_gives_existing_patients_the_new_facts_as_false_and_changes_nothing_else(
    app: FastAPI, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """Patients made before 0011 get takes_other_cns_depressants and has_lung_disease false (unknown until
    their care team says), their other facts and `updated_at` untouched, their entries and flags kept."""
    patient, provider = world["patient_a"], world["provider_a"]
    path = f"/v1/patients/{patient.patient_id}"
    facts = {
        "birth_year": 1950,
        "takes_opioids_or_benzodiazepines": True,
        "takes_other_cns_depressants": True,
        "has_lung_disease": True,
        "creatinine_clearance_ml_min": 42.5,
    }
    assert (await client.patch(path, headers=provider.headers, json=facts)).status_code == 200
    answer = await check_in(client, patient, day(0), red_flags={"seizure": True})
    before = (await client.get(path, headers=provider.headers)).json()
    await app.state.engine.dispose()
    migrations.downgrade(settings, "0010")
    migrations.upgrade(settings)
    after = (await client.get(path, headers=provider.headers)).json()
    assert after["takes_other_cns_depressants"] is False and after["has_lung_disease"] is False
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {"takes_other_cns_depressants", "has_lung_disease"}
    flags = (await client.get(f"/v1/flags?patient_id={patient.patient_id}", headers=provider.headers)).json()
    assert [f["evidence"][0]["id"] for f in flags["items"]] == [answer["check_in"]["id"]]
