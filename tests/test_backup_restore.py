"""The backup and restore procedure of docs/PRODUCTION.md, run as written: the demo data on a scratch
PostgreSQL database, the section's commands (pg_dump, createdb, pg_restore, symptrack migrate, psql)
taken from the document itself, then the app on the restored database serves the same records and
still opens the webhook secrets."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

import models
from api.app import create_app
from services.database import create_engine as create_async_engine
from services.database import create_session_factory, session_scope
from services.demo.alerts import demo_endpoint, register_demo_endpoint
from services.demo.loader import DEMO_PASSWORD, DEMO_PROVIDER_EMAIL, load_demo
from services.platform import migrations
from services.platform.migrations import sync_database_url
from services.settings import Settings
from tests.databases import PostgresDatabases, settings_for

PRODUCTION_MD = Path(__file__).resolve().parent.parent / "docs" / "PRODUCTION.md"
BIN = Path(sys.executable).parent
HOOK = "http://127.0.0.1:8787/"
KEY = Fernet.generate_key().decode()
PATIENT_EMAIL, PATIENT_TIMEZONE = "alex.rivera@demo.symptrack.test", "America/New_York"  # the demo's first
ASSIGNMENT = re.compile(r"^[A-Z_]+=\S+(\s+#.*)?$")


def documented_commands() -> list[str]:
    """The command lines of the section's sh blocks: the name assignments (the test gives its own
    names) and comments left out."""
    section = PRODUCTION_MD.read_text().split("## Backup and restore", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#") and not ASSIGNMENT.match(line)]


def _settings(database_url: str) -> Settings:
    return settings_for(
        database_url,
        webhook_secret_keys=[KEY],
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
    )


async def _load_demo(settings: Settings) -> None:
    engine = create_async_engine(settings)
    try:
        async with session_scope(create_session_factory(engine)) as session:
            await load_demo(session, settings)
        async with session_scope(create_session_factory(engine)) as session:
            await register_demo_endpoint(session, settings, HOOK)
    finally:
        await engine.dispose()


async def _raise_an_urgent_flag(settings: Settings) -> None:
    """A demo patient reports a seizure today: a flag, an outbox event, a delivery to the demo endpoint."""
    async with _api(settings) as client:
        token = await client.post(
            "/v1/auth/token", data={"username": PATIENT_EMAIL, "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, token.text
        now = datetime.now(UTC)
        body = {
            "id": str(uuid.uuid4()),
            "date": now.astimezone(ZoneInfo(PATIENT_TIMEZONE)).date().isoformat(),
            "submitted_at": now.isoformat(),
            "red_flags": {"seizure": True},
        }
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        answer = await client.post("/v1/patients/me/check-ins", headers=headers, json=body)
        assert answer.status_code == 201, answer.text
        assert answer.json()["flags"], answer.text


def _counts(database_url: str) -> dict[str, object]:
    engine = create_engine(sync_database_url(database_url))
    try:
        with engine.connect() as connection:
            counts: dict[str, object] = {
                table.name: connection.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar_one()
                for table in models.metadata.sorted_tables
            }
            counts["alembic_version"] = connection.execute(
                text("SELECT version_num FROM alembic_version")
            ).all()
            return counts
    finally:
        engine.dispose()


@asynccontextmanager
async def _api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _what_the_api_serves(settings: Settings) -> dict[str, Any]:
    """Readiness, the provider's patients, the first one's summary, the demo endpoint's secret."""
    async with _api(settings) as client:
        ready = await client.get("/readyz")
        token = await client.post(
            "/v1/auth/token", data={"username": DEMO_PROVIDER_EMAIL, "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        patients = await client.get("/v1/patients", headers=headers)
        assert patients.status_code == 200, patients.text
        items = patients.json()["items"]
        summary = await client.get(f"/v1/patients/{items[0]['id']}/summary", headers=headers)
        assert summary.status_code == 200, summary.text
    engine = create_async_engine(settings)
    try:
        async with session_scope(create_session_factory(engine)) as session:
            endpoint = await demo_endpoint(session, settings, HOOK)  # decrypts with the settings' key
    finally:
        await engine.dispose()
    assert endpoint is not None
    return {
        "ready": ready.status_code,
        "patients": sorted(p["id"] for p in items),
        "summary": summary.json(),
        "secret": endpoint.secret,
    }


def _server(database_url: str) -> str:
    """The server's libpq URL, without a database: the procedure's SERVER."""
    url = make_url(database_url)
    return URL.create("postgresql", url.username, url.password, url.host, url.port).render_as_string(
        hide_password=False
    )


@pytest.mark.slow
def test_the_documented_backup_and_restore_keeps_every_record_and_secret(
    postgres: PostgresDatabases, tmp_path: Path
) -> None:
    live_name, restored_name = postgres.name("_backup_live"), postgres.name("_backup_restored")
    live_url = postgres.recreate(live_name)
    postgres.drop(restored_name)  # the procedure creates it
    restored_url = postgres.url(restored_name)
    try:
        live = _settings(live_url)
        migrations.upgrade(live)
        asyncio.run(_load_demo(live))
        asyncio.run(_raise_an_urgent_flag(live))
        before = _counts(live_url)
        assert all(
            before[table] for table in ("patient", "check_in", "flag", "webhook_endpoint", "webhook_delivery")
        )

        commands = documented_commands()
        for program in ("pg_dump ", "createdb ", "pg_restore ", "symptrack migrate", "psql "):
            assert any(program in line for line in commands), f"{program.strip()} is not in the procedure"
        env = {
            **{
                name: value for name, value in os.environ.items() if not name.startswith(("SYMPTRACK_", "PG"))
            },
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "SERVER": _server(live_url),
            "DATABASE": live_name,
            "BACKUP": str(tmp_path / "symptrack.dump"),
            "RESTORED": restored_name,
            "RESTORED_URL": restored_url,
            "SYMPTRACK_ENVIRONMENT": "development",
            "SYMPTRACK_SECRET_KEY": live.secret_key,
            "SYMPTRACK_WEBHOOK_SECRET_KEYS": f'["{KEY}"]',
            "SYMPTRACK_LOG_LEVEL": "WARNING",
            "SYMPTRACK_DATA_DIR": str(tmp_path),
        }
        said = []
        for line in commands:
            ran = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", line],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert ran.returncode == 0, f"{line}\n{ran.stderr}"
            said.append(ran.stdout)

        # The documented check: both databases counted alike, at the same revision.
        [checked] = [out for line, out in zip(commands, said, strict=True) if line.startswith("for db")]
        live_counts, restored_counts = checked.strip().splitlines()
        assert live_counts == restored_counts
        assert live_counts.endswith("|" + str(before["alembic_version"][0][0]))  # type: ignore[index]
        assert "database already at" in "".join(said)  # a dump of this release: nothing to migrate

        assert _counts(restored_url) == before
        live_serves = asyncio.run(_what_the_api_serves(live))
        restored_serves = asyncio.run(_what_the_api_serves(_settings(restored_url)))
        assert restored_serves == live_serves
        assert restored_serves["ready"] == 200 and restored_serves["secret"].startswith("whsec_")
    finally:
        postgres.drop(restored_name)
        postgres.drop(live_name)
