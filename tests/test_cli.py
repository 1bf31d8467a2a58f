"""The `symptrack` command, run as a user runs it: a real process on a temporary database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from services.accounts.passwords import verify_password
from services.platform.migrations import sync_database_url
from tests.databases import settings_for

SYMPTRACK = str(Path(sys.executable).with_name("symptrack"))


def environment(database_url: str, **variables: str) -> dict[str, str]:
    return {
        **os.environ,
        "SYMPTRACK_DATABASE_URL": database_url,
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_SECRET_KEY": settings_for(database_url).secret_key,
        **{f"SYMPTRACK_{name.upper()}": value for name, value in variables.items()},
    }


def symptrack(database_url: str, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = environment(database_url, **variables)
    return subprocess.run(
        [SYMPTRACK, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def rows(database_url: str, query: str) -> list[tuple[object, ...]]:
    engine = create_engine(sync_database_url(database_url))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def test_migrate_creates_the_schema(empty_database_url: str) -> None:
    result = symptrack(empty_database_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert rows(empty_database_url, "SELECT count(*) FROM alembic_version") == [(1,)]
    assert rows(empty_database_url, "SELECT count(*) FROM user_account") == [(0,)]
    # A second run is a no-op, not an error.
    assert symptrack(empty_database_url, "migrate").returncode == 0


# The command is under test; the services it calls are tested on both databases elsewhere.
@pytest.mark.one_database
def test_create_admin_creates_organization_and_admin(database_url: str) -> None:
    result = symptrack(
        database_url,
        "create-admin",
        "--email",
        "Ops@Clinic.example",
        "--password",
        "a-long-password",
        "--organization",
        "North Clinic",
    )
    assert result.returncode == 0, result.stderr
    assert "ops@clinic.example" in result.stdout
    [(email, role, password_hash, org_name)] = rows(
        database_url,
        "SELECT u.email, u.role, u.password_hash, o.name FROM user_account u "
        "JOIN organization o ON o.id = u.organization_id",
    )
    assert (email, role, org_name) == ("ops@clinic.example", "admin", "North Clinic")
    assert isinstance(password_hash, str) and password_hash.startswith("$argon2")
    assert verify_password("a-long-password", password_hash)

    # A second admin joins the same organization rather than making a twin.
    second = symptrack(
        database_url,
        "create-admin",
        "--email",
        "second@clinic.example",
        "--password",
        "another-password",
        "--organization",
        "North Clinic",
    )
    assert second.returncode == 0, second.stderr
    assert rows(database_url, "SELECT count(*) FROM organization") == [(1,)]


# The command is under test; the services it calls are tested on both databases elsewhere.
@pytest.mark.one_database
def test_create_admin_refuses_a_taken_email_and_a_short_password(database_url: str) -> None:
    args = ["create-admin", "--email", "ops@clinic.example", "--organization", "North Clinic"]
    assert symptrack(database_url, *args, "--password", "a-long-password").returncode == 0

    taken = symptrack(database_url, *args[:2], "OPS@clinic.example", *args[3:], "--password", "x" * 12)
    assert taken.returncode == 1
    assert "already exists" in taken.stderr

    short = symptrack(
        database_url,
        "create-admin",
        "--email",
        "new@clinic.example",
        "--organization",
        "North Clinic",
        "--password",
        "short",
    )
    assert short.returncode == 1
    assert "at least 8 characters" in short.stderr
    assert rows(database_url, "SELECT count(*) FROM user_account") == [(1,)]


# The command is under test; the services it calls are tested on both databases elsewhere.
@pytest.mark.one_database
def test_create_admin_asks_for_the_password_when_not_given(database_url: str) -> None:
    """Typed at the prompt (twice), it never shows in `ps` or the shell's history."""
    result = subprocess.run(
        [SYMPTRACK, "create-admin", "--email", "ops@clinic.example", "--organization", "North Clinic"],
        env=environment(database_url),
        input="a-long-password\na-long-password\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "a-long-password" not in result.stdout + result.stderr  # not echoed
    [(stored,)] = rows(database_url, "SELECT password_hash FROM user_account")
    assert verify_password("a-long-password", str(stored))


# SQLite: the database `make run` loads the demo into; the services it calls are tested on both.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_demo_loads_once_and_says_how_to_sign_in(database_url: str) -> None:
    first = symptrack(database_url, "demo")
    assert first.returncode == 0, first.stderr
    assert "admin@demo.symptrack.test" in first.stdout
    assert "demo-password" in first.stdout
    counts = dict(rows(database_url, "SELECT role, count(*) FROM user_account GROUP BY role"))
    assert counts["admin"] == 1 and counts["provider"] == 1 and counts["patient"] >= 5
    [(care_links,)] = rows(database_url, "SELECT count(*) FROM care_team_member")
    assert care_links == counts["patient"]
    # Weeks of history for every patient: a regimen, check-ins with doses and ratings, GAD-7s.
    assert rows(database_url, "SELECT count(DISTINCT patient_id) FROM regimen") == [(counts["patient"],)]
    [(days, patients)] = rows(database_url, "SELECT count(*), count(DISTINCT patient_id) FROM check_in")
    assert patients == counts["patient"] and days >= 3 * 7 * counts["patient"]
    [(doses,)] = rows(database_url, "SELECT count(*) FROM dose WHERE status = 'taken'")
    assert doses >= days
    [(gad7s,)] = rows(database_url, "SELECT count(*) FROM anxiety_score WHERE instrument = 'gad7'")
    assert gad7s >= patients

    again = symptrack(database_url, "demo")
    assert again.returncode == 0, again.stderr
    assert "already loaded" in again.stdout
    assert dict(rows(database_url, "SELECT role, count(*) FROM user_account GROUP BY role")) == counts
    _demo_registers_a_local_webhook_endpoint_once(database_url)


ENDPOINTS = "SELECT url, events, min_severity, enabled FROM webhook_endpoint"
LOCAL = {"webhook_allow_http": "true", "webhook_allow_private_networks": "true"}


def _demo_registers_a_local_webhook_endpoint_once(database_url: str) -> None:
    """`symptrack demo --webhook-url`, on the demo loaded above (loading it is the slow part)."""
    with socket.socket() as probe:  # a port no one listens on, for `symptrack listen --demo` below
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    # A local http URL stays refused unless the operator allowed both: the error says how.
    refused = symptrack(database_url, "demo", "--webhook-url", url)
    assert refused.returncode == 1
    assert "SYMPTRACK_WEBHOOK_ALLOW_HTTP=true" in refused.stderr and "must use https" in refused.stderr
    assert rows(database_url, ENDPOINTS) == []

    first = symptrack(database_url, "demo", "--webhook-url", url, **LOCAL)
    assert first.returncode == 0, first.stderr
    [secret] = [word for word in first.stdout.split() if word.startswith("whsec_")][:1]
    assert f"Webhook endpoint registered for the demo organization: {url}" in first.stdout
    assert f"symptrack listen --port {port} --secret {secret}" in first.stdout
    [(stored_url, events, min_severity, enabled)] = rows(database_url, ENDPOINTS)
    assert (stored_url, min_severity, enabled) == (url, "urgent", 1)
    assert json.loads(str(events)) == [
        "flag.created",
        "flag.escalated",
        "flag.reopened",
        "flag.unacknowledged",
    ]

    again = symptrack(database_url, "demo", "--webhook-url", url, **LOCAL)
    assert again.returncode == 0, again.stderr
    assert "Webhook endpoint already registered" in again.stdout and secret in again.stdout
    assert len(rows(database_url, ENDPOINTS)) == 1

    # `symptrack listen --demo` (what `make listen` runs) finds that endpoint's secret by its URL.
    elsewhere = symptrack(database_url, "listen", "--demo", "--port", str(port + 1 if port < 65535 else 1))
    assert elsewhere.returncode == 1 and "symptrack demo --webhook-url" in elsewhere.stderr
    listener = subprocess.Popen(
        [SYMPTRACK, "listen", "--demo", "--port", str(port)],
        env=environment(database_url),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().startswith(f"Listening on {url}")
    finally:
        listener.terminate()
        listener.wait(timeout=10)


def test_production_refuses_the_default_secret(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SYMPTRACK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
        "SYMPTRACK_ENVIRONMENT": "production",
    }
    env.pop("SYMPTRACK_SECRET_KEY", None)
    result = subprocess.run(
        [SYMPTRACK, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "SYMPTRACK_SECRET_KEY" in result.stderr
    assert not (tmp_path / "prod.db").exists()


def test_help_starts_without_importing_the_app() -> None:
    # `symptrack --help` imports neither the app nor the database: it answers at once.
    probe = (
        "import sys; from click.testing import CliRunner; from api.cli import main; "
        "result = CliRunner().invoke(main, ['--help']); assert result.exit_code == 0, result.output; "
        "heavy = [m for m in ('api.app', 'sqlalchemy', 'services.database', 'alembic') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
