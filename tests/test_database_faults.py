"""The database going away: 503 problem+json, no partial write, and recovery without a restart.

The restart test runs a PostgreSQL of its own (initdb in a temporary folder, on a free port), never
the machine's shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from models.entries import Dose
from services import database
from services.database import session_scope
from services.platform import migrations
from tests.databases import in_ci, settings_for
from tests.entry_helpers import dose
from tests.world import World, build_world

pytestmark = pytest.mark.slow


async def _doses(app: FastAPI) -> int:
    async with session_scope(app.state.session_factory) as session:
        return int(await session.scalar(select(func.count()).select_from(Dose)) or 0)


async def _a_backend_waits_for_a_lock(connection: AsyncConnection) -> bool:
    await connection.execute(text("SELECT pg_stat_clear_snapshot()"))  # else read once per transaction
    waiting = await connection.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
    )
    return bool(waiting)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_database_going_away_mid_request_is_503_and_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World, database_url: str
) -> None:
    patient = world["patient_a"]
    entries = [{"type": "dose", "patient_id": "me", **dose()} for _ in range(500)]

    engine = app.state.engine
    async with engine.connect() as holder:
        # Hold the dose table so the batch waits at its first insert, then cut every other connection
        # while it waits: the cut always lands mid-request, however fast the batch would have been.
        await holder.execute(text("LOCK TABLE dose IN EXCLUSIVE MODE"))
        request = asyncio.create_task(
            client.post("/v1/sync", headers=patient.headers, json={"entries": entries})
        )
        while not await _a_backend_waits_for_a_lock(holder) and not request.done():
            await asyncio.sleep(0.01)
        assert not request.done(), "the batch should be waiting on the held table"
        await holder.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        await holder.rollback()
    response = await request
    assert response.status_code == 503, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    assert "pg_" not in response.text and "SELECT" not in response.text
    assert await _doses(app) == 0  # all or nothing: the batch's transaction never committed
    # The next request finds a fresh connection by itself.
    again = await client.post("/v1/sync", headers=patient.headers, json={"entries": entries[:3]})
    assert again.status_code == 200 and await _doses(app) == 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        bin_dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        self.bin = bin_dirs[-1] if bin_dirs else Path(os.path.dirname(shutil.which("initdb") or "/missing"))
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.folder / "data"),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")


@pytest.fixture
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    if not (Path("/usr/lib/postgresql").exists() or shutil.which("initdb")):
        if in_ci():
            pytest.fail("CI=true and no PostgreSQL server binaries to start a private server")
        pytest.skip("no PostgreSQL server binaries")
    # A short path of its own: the server's socket path must stay under ~100 characters.
    folder = Path(tempfile.mkdtemp(prefix="symptrack-pg-"))
    server = PrivatePostgres(folder)
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def private_app(private_postgres: PrivatePostgres) -> AsyncIterator[FastAPI]:
    settings = settings_for(private_postgres.url)
    migrations.upgrade(settings)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_the_api_recovers_when_postgresql_comes_back(
    private_postgres: PrivatePostgres, private_app: FastAPI
) -> None:
    world = await build_world(private_app)
    patient = world["patient_a"]
    transport = httpx.ASGITransport(app=private_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        path = f"/v1/patients/{patient.patient_id}/doses"
        assert (await client.post(path, headers=patient.headers, json=dose())).status_code == 201
        private_postgres.stop()
        down = await client.post(path, headers=patient.headers, json=dose())
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert (await client.get("/readyz")).status_code == 503
        private_postgres.start()
        back = await client.post(path, headers=patient.headers, json=dose())
        assert back.status_code == 201, back.text
        assert (await client.get("/readyz")).status_code == 200
        listed = await client.get(path, headers=patient.headers)
        assert len(listed.json()["items"]) == 2  # the write during the outage was not half-stored


async def _cut_the_app_s_connections(database_url: str) -> None:
    """From a connection of our own (outside the app's pool): end every other client's backend."""
    outsider = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with outsider.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
            )
    finally:
        await outsider.dispose()


@pytest.mark.one_database
@pytest.mark.parametrize("idle_seconds, answer", [(0.0, 201), (3600.0, 503)], ids=["checked", "unchecked"])
async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    idle_seconds: float,
    answer: int,
) -> None:
    """A pooled connection idle longer than PING_AFTER_IDLE_SECONDS is pinged at checkout, so one the
    server dropped meanwhile is replaced unseen; a busy one is not pinged (that costs three round trips)
    and its first statement finds it dead instead, answering 503 (the control case)."""
    patient = world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/doses"
    assert (await client.post(path, headers=patient.headers, json=dose())).status_code == 201
    await _cut_the_app_s_connections(database_url)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", idle_seconds)
    response = await client.post(path, headers=patient.headers, json=dose())
    assert response.status_code == answer, response.text
    again = await client.post(path, headers=patient.headers, json=dose())
    assert again.status_code == 201, again.text
