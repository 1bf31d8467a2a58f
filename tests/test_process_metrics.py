"""/metrics after real work: the process (memory, CPU, files), its pool, its worker's jobs and webhook
sends; and a `symptrack worker` alone serving the same with --metrics-port (issue 26, observability)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import update

from api.app import create_app
from models.base import utcnow
from models.webhooks import WebhookDelivery
from services.alerting.delivery import _failure, deliver_due
from services.database import session_scope
from services.flags.time_rules import time_rules_job
from services.platform.process_metrics import ATTEMPT_OUTCOMES
from services.platform.worker import Job, RegisteredJob, Worker
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import check_in, day
from tests.receiver import Receiver
from tests.test_cli import SYMPTRACK
from tests.world import World

WEBHOOK_SECRET_KEY = Fernet.generate_key().decode()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(
        database_url,
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_secret_keys=[WEBHOOK_SECRET_KEY],
    )


def value(text: str, sample: str) -> float:
    """A sample's value in Prometheus text (0 when absent: a labelled metric not yet touched)."""
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _scrape(client: httpx.AsyncClient) -> str:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    return answer.text


async def _endpoint(client: httpx.AsyncClient, world: World, receiver: Receiver) -> None:
    body = {"url": receiver.url, "events": ["flag.created"], "min_severity": "urgent"}
    created = await client.post("/v1/webhook-endpoints", headers=world["admin_a"].headers, json=body)
    assert created.status_code == 201, created.text
    receiver.secrets.append(created.json()["secret"])


async def _make_due(app: FastAPI) -> None:
    async with session_scope(app.state.session_factory) as session:
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))


async def test_the_process_shows_its_memory_cpu_and_files(client: httpx.AsyncClient) -> None:
    text = await _scrape(client)
    assert value(text, "process_resident_memory_bytes") > 10_000_000
    assert value(text, "process_cpu_seconds_total") > 0
    assert value(text, "process_open_fds") > 0
    assert "# HELP symptrack_webhook_attempts_total" in text and "# HELP symptrack_job_round_seconds" in text


# Every label name a scrape may show; each one's values are bounded (route templates, the rules and
# severities of the catalogue, the statuses, an attempt's outcome class, a registered job's name).
LABELS = {"method", "route", "status", "rule", "severity", "state", "outcome", "job", "le", "dependency"}


async def test_every_label_is_one_of_a_known_few(client: httpx.AsyncClient, world: World) -> None:
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    text = await _scrape(client)
    names = set(re.findall(r'[{,]([a-z_]+)="', text))
    assert names <= LABELS, names - LABELS
    assert {"rule", "severity", "route"} <= names


async def test_attempts_by_outcome_and_send_latency_after_real_sends(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    receiver.script = [503]
    await _endpoint(client, world, receiver)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    before = await _scrape(client)
    assert await deliver_due(app.state.session_factory, app.state.settings) == 1  # answered 503
    port = receiver.port
    receiver.stop()
    await _make_due(app)
    assert await deliver_due(app.state.session_factory, app.state.settings) == 1  # nobody listening
    receiver.start(port)
    await _make_due(app)
    assert await deliver_due(app.state.session_factory, app.state.settings) == 1  # 200
    assert len(receiver.wait_for(2)) == 2
    after = await _scrape(client)

    def delta(sample: str) -> float:
        return value(after, sample) - value(before, sample)

    for outcome in ("non_2xx", "connection", "succeeded"):
        assert delta(f'symptrack_webhook_attempts_total{{outcome="{outcome}"}}') == 1, outcome
    assert delta("symptrack_webhook_send_seconds_count") == 3
    assert 0 < delta("symptrack_webhook_send_seconds_sum") < 30
    outcomes = set(re.findall(r'symptrack_webhook_attempts_total\{outcome="([^"]*)"\}', after))
    assert outcomes <= set(ATTEMPT_OUTCOMES), outcomes


def test_a_send_without_an_answer_is_classed_by_why() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/")
    assert _failure(httpx.ReadTimeout("slow", request=request)) == "timeout"
    assert _failure(httpx.ConnectTimeout("slow", request=request)) == "timeout"
    assert _failure(httpx.ConnectError("refused", request=request)) == "connection"
    assert _failure(httpx.RemoteProtocolError("closed", request=request)) == "connection"


async def _run_once(app: FastAPI, name: str, job: Job) -> None:
    """The worker as `symptrack serve` runs it, for one round of `job` under `name`."""
    worker: Worker

    async def once(factory: object, settings: Settings) -> int:
        try:
            return await job(app.state.session_factory, settings)
        finally:
            worker.stop()

    worker = Worker(app.state.session_factory, app.state.settings, [RegisteredJob(name, once, 3600)])
    await asyncio.wait_for(worker.run(), timeout=60)


async def test_a_time_rules_pass_and_a_failing_round_are_timed_and_counted(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    await check_in(client, world["patient_a"], day(-3))  # someone for the pass to look at
    before = await _scrape(client)
    await _run_once(app, "time_rules", time_rules_job)

    async def broken(*_: object) -> int:
        raise RuntimeError("a round that fails")

    await _run_once(app, "webhook_delivery", broken)
    after = await _scrape(client)

    def delta(sample: str) -> float:
        return value(after, sample) - value(before, sample)

    assert delta('symptrack_job_round_seconds_count{job="time_rules"}') == 1
    assert 0 < delta('symptrack_job_round_seconds_sum{job="time_rules"}') < 60
    assert delta('symptrack_job_failures_total{job="time_rules"}') == 0
    assert delta('symptrack_job_failures_total{job="webhook_delivery"}') == 1
    assert delta('symptrack_job_round_seconds_count{job="webhook_delivery"}') == 1


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite's pool is not the one production runs
async def test_the_pool_gauges_move_when_connections_are_held(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"db_pool_size": 2, "db_max_overflow": 0}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await _pool_gauges_move(app, client)


async def _until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout=30)


async def _pool_gauges_move(app: FastAPI, client: httpx.AsyncClient) -> None:
    engine = app.state.engine
    pool = engine.sync_engine.pool
    quiet = await _scrape(client)
    in_use = value(quiet, 'symptrack_db_pool_connections{state="in_use"}')  # a LISTEN may hold one
    assert value(quiet, "symptrack_db_pool_size") == 2
    assert value(quiet, "symptrack_db_pool_waiting") == 0
    held = []
    waiter: asyncio.Task[None] | None = None
    try:
        while pool.checkedout() < pool.size():  # every connection the pool may open, in use
            held.append(await engine.connect())

        async def wait_for_one() -> None:
            async with engine.connect():
                pass

        waiter = asyncio.create_task(wait_for_one())
        await _until(lambda: pool.waiting == 1)  # that checkout waits (a condition, not a timing)
        # The scrape reads the pool before it checks out its own connection, then waits its turn.
        scrape = asyncio.create_task(client.get("/metrics"))
        await _until(lambda: pool.waiting == 2)
    finally:
        for connection in held:
            await connection.close()
    assert waiter is not None
    await asyncio.wait_for(waiter, timeout=30)
    busy = (await asyncio.wait_for(scrape, timeout=30)).text
    assert value(busy, 'symptrack_db_pool_connections{state="in_use"}') == 2 > in_use
    assert value(busy, 'symptrack_db_pool_connections{state="idle"}') == 0
    assert value(busy, "symptrack_db_pool_waiting") == 1
    after = await _scrape(client)
    assert value(after, "symptrack_db_pool_waiting") == 0
    assert value(after, 'symptrack_db_pool_connections{state="in_use"}') == in_use


def _worker_metrics_url(log: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("{") and "worker metrics at" in (message := json.loads(line)["msg"]):
                return str(message.rpartition(" ")[2])
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)  # polling the log for the line, not racing the code
    raise AssertionError(log.read_text())


def _start_worker(database_url: str, folder: Path, log: Path) -> subprocess.Popen[bytes]:
    """`symptrack worker --metrics-port 0`: a free port, which it logs."""
    env = {
        **os.environ,
        "SYMPTRACK_DATABASE_URL": database_url,
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_DATA_DIR": str(folder / "data"),
        "SYMPTRACK_WEBHOOK_ALLOW_HTTP": "true",
        "SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "SYMPTRACK_WEBHOOK_SECRET_KEYS": json.dumps([WEBHOOK_SECRET_KEY]),
    }
    return subprocess.Popen(
        [SYMPTRACK, "worker", "--metrics-port", "0"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


@pytest.mark.slow
async def test_a_worker_alone_serves_its_metrics_on_loopback(
    client: httpx.AsyncClient, world: World, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    await _endpoint(client, world, receiver)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    log = tmp_path / "worker.log"
    process = _start_worker(database_url, tmp_path, log)
    try:
        url = _worker_metrics_url(log, process)
        assert url.startswith("http://127.0.0.1:")
        receiver.wait_for(1, timeout=30)
        async with httpx.AsyncClient() as http:
            text = ""
            # The send arrived; its outcome is counted right after (before it is recorded).
            for _ in range(200):
                text = (await http.get(url)).text
                listening = not database_url.startswith("postgresql") or (
                    value(text, 'symptrack_dependency_up{dependency="listen_outbox"}') == 1
                )
                if value(text, 'symptrack_webhook_attempts_total{outcome="succeeded"}') >= 1 and listening:
                    break
                await asyncio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert value(text, 'symptrack_webhook_attempts_total{outcome="succeeded"}') == 1
    assert value(text, "symptrack_webhook_send_seconds_count") == 1
    assert value(text, 'symptrack_job_round_seconds_count{job="webhook_delivery"}') >= 1
    assert value(text, "process_resident_memory_bytes") > 10_000_000
    assert value(text, "process_open_fds") > 0
    assert "symptrack_http_requests_total" not in text  # a worker answers no API requests
    if database_url.startswith("postgresql"):  # its wake-ups come through its LISTEN connection
        assert value(text, 'symptrack_dependency_up{dependency="listen_outbox"}') == 1
    assert process.returncode == 0, log.read_text()
