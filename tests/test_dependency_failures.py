"""Dependencies failing (issue 26): Redis refused or hung, a pool of one connection held, PostgreSQL
refusing connections, a LISTEN connection cut. Each answers 503 problem+json with Retry-After, never
a 500 or a hang, and everything comes back without a restart.

Redis here is a server of the test's own on a free port (stopped, or frozen with SIGSTOP to hang it),
never the machine's shared one.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from models.accounts import Role
from services.accounts import users as accounts
from services.accounts.auth import issue_enrollment_code
from services.database import create_session_factory, session_scope
from services.platform import wakeup
from services.platform.worker import RegisteredJob, Worker
from services.settings import Settings
from tests.databases import PostgresDatabases, _libpq_conninfo, in_ci, postgres_server_url, settings_for
from tests.entry_helpers import dose
from tests.test_auth_cache import _counted
from tests.world import World, build_world

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
EMAIL = "doc@a.example"
# A request that hangs fails the test here, well before any server or pool timeout of the old code.
BOUNDED = httpx.Timeout(10.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                assert self.process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
                time.sleep(0.02)

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if in_ci():
            pytest.fail("CI=true and no redis-server to start")
        pytest.skip("no redis-server")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=BOUNDED
        ) as client:
            yield app, client


async def _staff_and_enrollment_code(app: FastAPI) -> str:
    async with session_scope(app.state.session_factory) as session:
        org = await accounts.create_organization(session, "Clinic")
        await accounts.create_user(
            session, organization_id=org.id, email=EMAIL, name="Doc", role=Role.admin, password=PASSWORD
        )
        patient = await accounts.create_patient(
            session, organization_id=org.id, email="new@a.example", name="New", timezone="Europe/Berlin"
        )
        code, _ = await issue_enrollment_code(session, app.state.settings, patient.id, None)
    return code


async def _sign_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": EMAIL, "password": password})


def _is_503_to_retry(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers["content-type"] == "application/problem+json"
        and int(response.headers["retry-after"]) > 0
    )


async def _dependency_up(client: httpx.AsyncClient, dependency: str) -> int | None:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(f'symptrack_dependency_up{{dependency="{dependency}"}} '):
            return int(line.split()[1])
    return None


async def _until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.02)


# --- Redis ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("failure", ["hung", "refused"])
async def test_redis_down_is_503_for_sign_in_and_enroll_and_counts_no_failure(
    database_url: str, private_redis: PrivateRedis, failure: str
) -> None:
    # One failure allowed: a sign-in counted while Redis was down would lock the account out after.
    # No per-address rate limit, so the sign-in's own hit is the one a frozen Redis receives.
    settings = settings_for(
        database_url,
        redis_url=private_redis.url,
        login_max_failures_per_account=1,
        login_max_failures_per_address=1,
        rate_limit_per_address_per_minute=0,
    )
    async with _served(settings) as (app, client):
        code = await _staff_and_enrollment_code(app)
        signed_in = await _sign_in(client)
        assert signed_in.status_code == 200, signed_in.text  # Redis is in use: its connection is open
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        assert await _dependency_up(client, "redis") == 1

        if failure == "hung":
            private_redis.signal(signal.SIGSTOP)  # accepts connections, answers nothing
        else:
            private_redis.stop()
        try:
            for attempt in (await _sign_in(client), await _sign_in(client, "a wrong password")):
                assert _is_503_to_retry(attempt), attempt.text  # neither 200 nor 401: not checked
            enrolled = await client.post(
                "/v1/auth/enroll", json={"enrollment_code": code, "password": PASSWORD}
            )
            assert _is_503_to_retry(enrolled), enrolled.text
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "unreachable"}
            assert await _dependency_up(client, "redis") == 0
            # Everything else goes on: the rate limit lets requests through while Redis is down.
            assert (await client.get("/v1/me", headers=headers)).status_code == 200
        finally:
            if failure == "hung":
                private_redis.signal(signal.SIGCONT)
            else:
                private_redis.start()  # the same port again

        async def ready_again() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await _until(ready_again, "/readyz after Redis came back")
        assert (await client.get("/readyz")).json()["checks"]["redis"] == "ok"
        assert await _dependency_up(client, "redis") == 1
        # Nothing of the outage was counted: with one failure allowed, one counted would mean 429.
        assert (await _sign_in(client)).status_code == 200
        enrolled = await client.post("/v1/auth/enroll", json={"enrollment_code": code, "password": PASSWORD})
        assert enrolled.status_code == 200, enrolled.text


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_sign_in_the_database_failed_is_not_counted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password was right; the session could not be written (the database went away)."""
    settings = settings_for(database_url, login_max_failures_per_account=1, login_max_failures_per_address=1)
    async with _served(settings) as (app, client):
        await _staff_and_enrollment_code(app)

        async def database_gone(*_args: object) -> None:
            raise ConnectionRefusedError

        with monkeypatch.context() as patched:
            patched.setattr("services.accounts.auth.start_session", database_gone)
            attempt = await _sign_in(client)
        assert _is_503_to_retry(attempt), attempt.text
        assert (await _sign_in(client)).status_code == 200  # one counted would mean 429


# --- The database pool and the server's connections -----------------------------------------------


async def _backend_waits_for_a_lock(connection: AsyncConnection) -> bool:
    await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
    waiting = await connection.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
    )
    return bool(waiting)


async def _nothing(_factory: Any, _settings: Settings) -> int:
    return 0


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_pool_of_one_serves_beside_the_listeners_and_answers_503_when_held(database_url: str) -> None:
    settings = settings_for(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=1, auth_cache_seconds=60
    )
    async with _served(settings) as (app, client):
        world = await build_world(app)
        # A worker beside the API, as `symptrack serve` runs one: its LISTEN too is outside the pool.
        worker = Worker(app.state.session_factory, settings, [RegisteredJob("idle", _nothing, 3600)])
        running = asyncio.create_task(worker.run())
        try:
            await _until(_listening(worker), "the worker's LISTEN")
            assert app.state.caller_cache.listener.up
            pool = app.state.engine.pool
            assert pool.checkedout() == 0  # both LISTEN connections are the listeners' own
            patient = world["patient_a"]
            doses = f"/v1/patients/{patient.patient_id}/doses"
            for _ in range(3):
                assert (await client.post(doses, headers=patient.headers, json=dose())).status_code == 201
                assert (await client.get(doses, headers=patient.headers)).status_code == 200

            outsider = create_async_engine(database_url, poolclass=NullPool)
            try:
                async with outsider.connect() as holder:
                    # The dose waits on the held table with the pool's one connection: the next
                    # request finds none within the pool timeout.
                    await holder.execute(text("LOCK TABLE dose IN EXCLUSIVE MODE"))
                    held = asyncio.create_task(client.post(doses, headers=patient.headers, json=dose()))
                    await _until(lambda: _backend_waits_for_a_lock(holder), "the dose waiting on the lock")
                    refused = await client.get(doses, headers=patient.headers)
                    assert _is_503_to_retry(refused), refused.text
                    await holder.rollback()
                assert (await held).status_code == 201
            finally:
                await outsider.dispose()
            assert (await client.get(doses, headers=patient.headers)).status_code == 200
        finally:
            worker.stop()
            await running


def _listening(worker: Worker) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return worker.listener is not None and bool(worker.listener.up)

    return check


@pytest.fixture
def refused_role(postgres: PostgresDatabases) -> Iterator[str]:
    """A role PostgreSQL lets in zero times: every connection is refused as "too many connections"."""
    name = f"symptrack_refused_{postgres.worker}"[:63]
    with psycopg.connect(_libpq_conninfo(postgres_server_url()), autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        conn.execute(f'CREATE ROLE "{name}" LOGIN CONNECTION LIMIT 0')
    yield name
    with psycopg.connect(_libpq_conninfo(postgres_server_url()), autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgresql_refusing_connections_is_503(database_url: str, refused_role: str) -> None:
    refused_url = make_url(database_url).set(username=refused_role).render_as_string(hide_password=False)
    async with _served(settings_for(refused_url)) as (_app, client):
        attempt = await _sign_in(client)
        assert _is_503_to_retry(attempt), attempt.text
        assert (await client.get("/readyz")).status_code == 503


# --- LISTEN connections come back -----------------------------------------------------------------


async def _terminate(database_url: str, application_name: str) -> None:
    outsider = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with outsider.connect() as connection:
            ended = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": application_name},
            )
        assert ended == 1
    finally:
        await outsider.dispose()


async def _notify(database_url: str, channel: str, message: str = "") -> None:
    outsider = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with outsider.begin() as connection:
            await connection.execute(
                text("SELECT pg_notify(:channel, :message)"), {"channel": channel, "message": message}
            )
    finally:
        await outsider.dispose()


class HeldReconnect:
    """Holds a listener's next connect until released: the test sees the lost state for as long as
    it needs, without racing the backoff."""

    def __init__(self, listener: wakeup.Listener) -> None:
        self.released = asyncio.Event()
        connect = listener.connect

        async def held() -> Any:
            await self.released.wait()
            return await connect()

        listener.connect = held


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_caller_cache_listens_again_after_its_connection_is_cut(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="symptrack.wakeup")
    # A long TTL: only a notification can end a cached session within this test.
    async with _served(settings_for(database_url, auth_cache_seconds=60)) as (app, client):
        world: World = await build_world(app)
        headers = world["patient_a"].headers
        cache = app.state.caller_cache
        assert (await client.get("/v1/me", headers=headers)).status_code == 200
        assert await _dependency_up(client, "listen_auth") == 1

        hold = HeldReconnect(cache.listener)
        await _terminate(database_url, "symptrack listen auth")

        async def down() -> bool:
            return await _dependency_up(client, "listen_auth") == 0

        await _until(down, "the lost LISTEN connection noticed")
        # Notices could be missed now: nothing is kept, every request asks the database.
        async with _counted(app) as statements:
            assert (await client.get("/v1/me", headers=headers)).status_code == 200
            assert (await client.get("/v1/me", headers=headers)).status_code == 200
        assert len(statements) == 2

        hold.released.set()

        async def up() -> bool:
            return await _dependency_up(client, "listen_auth") == 1

        await _until(up, "the LISTEN connection back")
        async with _counted(app) as statements:
            assert (await client.get("/v1/me", headers=headers)).status_code == 200
            assert (await client.get("/v1/me", headers=headers)).status_code == 200
        assert len(statements) == 1  # kept again

        # A revocation committed by another process is heard again, and ends the kept session.
        (family_id,) = list(cache._entries)  # the patient's session, kept
        heard = cache.invalidations_heard
        outsider = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with outsider.begin() as connection:
                await connection.execute(
                    text(
                        "UPDATE token_family SET revoked_at = now(), revoked_reason = 'logout' WHERE id = :id"
                    ),
                    {"id": family_id},
                )
                await connection.execute(
                    text("SELECT pg_notify('symptrack_auth', :m)"), {"m": f"family:{family_id}"}
                )
        finally:
            await outsider.dispose()

        async def heard_it() -> bool:
            return bool(cache.invalidations_heard > heard)

        await _until(heard_it, "the revocation's NOTIFY")
        assert (await client.get("/v1/me", headers=headers)).status_code == 401

    # One line when lost, one when back.
    lines = [r.getMessage() for r in caplog.records if r.name == "symptrack.wakeup"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("LISTEN symptrack_auth connection lost"), lines
    assert lines[1] == "LISTEN symptrack_auth is back", lines


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_worker_is_woken_by_notify_again_after_its_listen_connection_is_cut(
    database_url: str,
) -> None:
    settings = settings_for(database_url)
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
    runs: list[float] = []

    async def counted(_factory: Any, _settings: Settings) -> int:
        runs.append(time.monotonic())
        return 0

    # Polls once an hour: a run within the test comes from a wake-up.
    worker = Worker(create_session_factory(engine), settings, [RegisteredJob("counted", counted, 3600)])
    running = asyncio.create_task(worker.run())
    try:
        await _until(_listening(worker), "the worker's LISTEN")
        assert worker.listener is not None
        await _woken_by_notify(database_url, runs)

        hold = HeldReconnect(worker.listener)
        await _terminate(database_url, "symptrack listen outbox")

        async def lost() -> bool:
            return worker.listener is not None and worker.listener.up is False

        await _until(lost, "the lost LISTEN connection noticed")
        before = len(runs)
        hold.released.set()
        await _until(_listening(worker), "the worker's LISTEN back")

        async def woken_on_return() -> bool:  # outbox events committed meanwhile were not heard
            return len(runs) > before

        await _until(woken_on_return, "a run when the LISTEN came back")
        await _woken_by_notify(database_url, runs)
    finally:
        worker.stop()
        await running
        await engine.dispose()


async def _woken_by_notify(database_url: str, runs: list[float]) -> None:
    before = len(runs)
    await _notify(database_url, wakeup.CHANNEL)

    async def woken() -> bool:
        return len(runs) > before

    await _until(woken, "a run after a NOTIFY")
