"""Delivery workers as real processes: one killed mid-send loses nothing; two on PostgreSQL send each
event once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import select

from models.webhooks import WebhookDelivery
from services.database import session_scope
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import check_in, day
from tests.receiver import Receiver
from tests.test_cli import SYMPTRACK
from tests.world import World

pytestmark = pytest.mark.slow
# The test's app and the worker processes share the key that encrypts webhook secrets, as a
# deployment's processes do.
WEBHOOK_SECRET_KEY = Fernet.generate_key().decode()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(
        database_url,
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_secret_keys=[WEBHOOK_SECRET_KEY],
    )


def _start_worker(
    database_url: str, log: Path, lease_seconds: float | None = None
) -> subprocess.Popen[bytes]:
    """A `symptrack worker` process; with `lease_seconds`, that lease, renewed three times within it."""
    leases = (
        {}
        if lease_seconds is None
        else {
            "SYMPTRACK_WEBHOOK_LEASE_SECONDS": str(lease_seconds),
            "SYMPTRACK_WEBHOOK_LEASE_RENEW_SECONDS": str(lease_seconds / 3),
        }
    )
    env = {
        **os.environ,
        "SYMPTRACK_DATABASE_URL": database_url,
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_DATA_DIR": str(log.parent / "data"),  # its generated secret key, not ./var
        "SYMPTRACK_WEBHOOK_ALLOW_HTTP": "true",
        "SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "SYMPTRACK_WEBHOOK_SECRET_KEYS": json.dumps([WEBHOOK_SECRET_KEY]),
        **leases,
    }
    return subprocess.Popen([SYMPTRACK, "worker"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def _endpoint(client: httpx.AsyncClient, world: World, receiver: Receiver) -> str:
    response = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": receiver.url, "events": ["flag.created"], "min_severity": "urgent"},
    )
    receiver.secrets.append(response.json()["secret"])
    return str(response.json()["id"])


async def _statuses(app: FastAPI) -> list[str]:
    async with session_scope(app.state.session_factory) as session:
        return [d.status for d in (await session.execute(select(WebhookDelivery))).scalars()]


async def test_a_worker_killed_mid_delivery_loses_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    receiver: Receiver,
    database_url: str,
    tmp_path: Path,
) -> None:
    release = threading.Event()

    def hang() -> int:
        release.wait(30)  # the first request never gets its answer in time: the worker dies first
        return 200

    receiver.script = [hang]
    await _endpoint(client, world, receiver)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    # A short lease, so the test need not wait the production minute for a dead worker's claim.
    first = _start_worker(database_url, tmp_path / "worker1.log", lease_seconds=3)
    try:
        receiver.wait_for(1, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    second = _start_worker(database_url, tmp_path / "worker2.log", lease_seconds=3)
    try:
        requests = receiver.wait_for(2, timeout=30)
    finally:
        release.set()
        # A stopping worker finishes the round in flight, so the second send's outcome is recorded.
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    assert requests[0].webhook_id == requests[1].webhook_id
    assert all(r.verified_with for r in requests)
    assert await _statuses(app) == ["succeeded"]
    assert second.returncode == 0, (tmp_path / "worker2.log").read_text()


async def _all_succeeded(app: FastAPI) -> None:
    while set(await _statuses(app)) != {"succeeded"}:
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite runs one worker; several need PostgreSQL
async def test_two_workers_on_postgresql_send_each_event_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    receiver: Receiver,
    database_url: str,
    tmp_path: Path,
) -> None:
    endpoint_id = await _endpoint(client, world, receiver)
    events = 40
    for _ in range(events):
        ping = await client.post(
            f"/v1/webhook-endpoints/{endpoint_id}/ping", headers=world["admin_a"].headers
        )
        assert ping.status_code == 202
    # The production lease, renewed while each send is in flight: the other worker never takes a
    # delivery still being sent.
    workers = [_start_worker(database_url, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        receiver.wait_for(events, timeout=60)
        await asyncio.wait_for(_all_succeeded(app), timeout=60)
    finally:
        # Stopped workers have finished every send they started: a duplicate would have arrived.
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(20)
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == events and len(set(ids)) == events
    assert set(await _statuses(app)) == {"succeeded"}
