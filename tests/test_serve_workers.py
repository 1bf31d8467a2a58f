"""`symptrack serve --workers N`: several API processes on PostgreSQL, and what they tell the operator."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.databases import settings_for
from tests.test_cli import SYMPTRACK, symptrack
from tests.test_rate_limits import _free_port
from tests.world import World


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_refuses_several_processes(database_url: str) -> None:
    result = symptrack(database_url, "serve", "--workers", "2")
    assert result.returncode != 0
    assert "--workers above 1 needs PostgreSQL" in result.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.one_database
async def test_several_processes_serve_and_warn(world: World, database_url: str) -> None:
    _serve_with_two_workers(world, database_url)


def _serve_with_two_workers(world: World, database_url: str) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "SYMPTRACK_REDIS_URL"}
    env.update(
        SYMPTRACK_DATABASE_URL=database_url,
        SYMPTRACK_ENVIRONMENT="development",
        SYMPTRACK_SECRET_KEY=settings_for(database_url).secret_key,
        SYMPTRACK_LOG_LEVEL="WARNING",
        SYMPTRACK_SHUTDOWN_GRACE_SECONDS="0",  # no balancer to drain from: stop at once
    )
    process = subprocess.Popen(
        [SYMPTRACK, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "serve --workers 2 stopped"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 did not answer within 60 s"
            time.sleep(0.1)
        me = httpx.get(f"{base}/v1/me", headers=world["patient_a"].headers)
        assert me.status_code == 200
        assert "server" not in me.headers  # the same server options as one process
        assert len(_children(process.pid)) >= 2  # the supervisor, and a process per worker
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert "run `symptrack worker` for webhook alerts" in errors
    assert "SYMPTRACK_REDIS_URL is not set" in errors
