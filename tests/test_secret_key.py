"""No signing key in the code: development makes a random one and keeps it in the data folder;
production refuses to start without a long one of its own."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import ValidationError

import services.settings
from services.platform import local_secret
from services.settings import Settings
from tests.databases import STRONG_KEY
from tests.test_cli import SYMPTRACK
from tests.world import World

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database

# The key every install shared before: written in the code, so anyone could sign tokens with it.
OLD_BUILT_IN_KEY = "development-only-secret-change-me"
SOURCE_FOLDERS = ("api", "services", "models", "alembic", "bench")
ROOT = Path(__file__).resolve().parent.parent


def _development(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYMPTRACK_SECRET_KEY", raising=False)
    monkeypatch.delenv("SYMPTRACK_ENVIRONMENT", raising=False)


def test_development_makes_a_random_key_once_and_keeps_it(tmp_path: Path) -> None:
    first = _development(tmp_path / "data")
    key_file = tmp_path / "data" / local_secret.KEY_FILE
    assert len(first.secret_key) >= 32 and first.secret_key != OLD_BUILT_IN_KEY
    assert key_file.read_text().strip() == first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # only this user reads it
    # The next start (a restart, another process) signs with the same key: tokens survive.
    assert _development(tmp_path / "data").secret_key == first.secret_key
    # Another install makes its own.
    assert _development(tmp_path / "other").secret_key != first.secret_key
    assert [p.name for p in (tmp_path / "data").iterdir()] == [local_secret.KEY_FILE]  # no leftovers


def test_a_rival_process_that_writes_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes start on an empty folder; the other one puts its key in place while this one is
    still making its own: both must end up signing with the one key on disk."""
    real_new_key = local_secret.new_key
    rival: list[str] = []

    def rival_writes_meanwhile() -> str:
        if not rival:
            rival.append("running")
            rival.append(local_secret.load_or_create(tmp_path))  # the other process, all the way
        return real_new_key()

    monkeypatch.setattr(local_secret, "new_key", rival_writes_meanwhile)
    ours = local_secret.load_or_create(tmp_path)
    assert ours == rival[1] == (tmp_path / local_secret.KEY_FILE).read_text().strip()
    assert [p.name for p in tmp_path.iterdir()] == [local_secret.KEY_FILE]


def test_processes_starting_at_once_share_one_key(tmp_path: Path) -> None:
    start = threading.Barrier(6)
    keys: list[str] = []

    def load() -> None:
        start.wait()
        keys.append(_development(tmp_path).secret_key)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 6 and len(set(keys)) == 1


def test_a_damaged_key_file_stops_the_start_with_its_name(tmp_path: Path) -> None:
    (tmp_path / local_secret.KEY_FILE).write_text("short\n")
    with pytest.raises(ValidationError, match="secret_key is shorter than 32 characters: delete the file"):
        _development(tmp_path)


def test_production_needs_its_own_long_key(tmp_path: Path) -> None:
    _development(tmp_path)  # a development key lying in the folder is no excuse
    with pytest.raises(ValidationError, match="SYMPTRACK_SECRET_KEY must be set"):
        Settings(_env_file=None, environment="production", data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="SYMPTRACK_SECRET_KEY must be at least 32"):
        Settings(_env_file=None, environment="production", secret_key="s" * 31)  # type: ignore[call-arg]
    empty = tmp_path / "empty"
    ok = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        secret_key=STRONG_KEY,
        data_dir=empty,
        webhook_secret_keys=[Fernet.generate_key().decode()],  # production needs them too
        database_url="postgresql+asyncpg://symptrack@db:5432/symptrack",  # and PostgreSQL
    )
    assert ok.secret_key == STRONG_KEY and not empty.exists()  # production writes no key file


def test_no_signing_key_is_written_in_the_code() -> None:
    assert not hasattr(services.settings, "DEVELOPMENT_SECRET_KEY")
    for folder in SOURCE_FOLDERS:
        for source in (ROOT / folder).rglob("*.py"):
            assert OLD_BUILT_IN_KEY not in source.read_text(), source


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # What a development server with nothing configured but its database runs with.
    return Settings(_env_file=None, database_url=database_url, data_dir=tmp_path / "var")  # type: ignore[call-arg]


async def test_a_token_signed_with_the_old_built_in_key_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    admin = world["admin_a"]
    claims = jwt.decode(admin.access_token, options={"verify_signature": False})
    forged = jwt.encode(claims, OLD_BUILT_IN_KEY, algorithm="HS256")
    assert (await client.get("/v1/me", headers=admin.headers)).status_code == 200
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def _symptrack_without_a_key(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SYMPTRACK_")}
    environment = {**inherited, "SYMPTRACK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", **env}
    return subprocess.run(
        [SYMPTRACK, "migrate"], env=environment, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("key", [None, "a-short-secret-value"])
def test_the_command_refuses_production_without_a_long_key(tmp_path: Path, key: str | None) -> None:
    env = {"SYMPTRACK_ENVIRONMENT": "production"} | ({"SYMPTRACK_SECRET_KEY": key} if key else {})
    result = _symptrack_without_a_key(tmp_path, **env)
    assert result.returncode == 1
    assert "SYMPTRACK_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
    if key:
        assert key not in result.stderr + result.stdout  # the message never quotes the key
    assert not (tmp_path / "x.db").exists()  # refused before touching anything


def test_the_command_in_development_keeps_its_key_in_the_data_folder(tmp_path: Path) -> None:
    result = _symptrack_without_a_key(tmp_path, SYMPTRACK_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "data" / local_secret.KEY_FILE).read_text().strip()) >= 32
