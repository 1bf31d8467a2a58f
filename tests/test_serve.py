"""`symptrack serve` from nothing: it migrates its SQLite file, answers, and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.test_cli import SYMPTRACK


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_migrates_sqlite_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "SYMPTRACK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'serve.db'}",
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_DATA_DIR": str(tmp_path / "fresh"),  # no key set: it makes one there
        "SYMPTRACK_SHUTDOWN_GRACE_SECONDS": "0",  # the drain: tests/test_serve_drain.py
    }
    process = subprocess.Popen(
        [SYMPTRACK, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer /healthz within 60 s"
            time.sleep(0.2)
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200
        assert "server" not in ready.headers  # the answers don't name the software behind them
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "symptrack"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # A stop asked for is a success (uvicorn alone would die by the signal it re-raises).
    assert process.returncode == 0, output
    assert "worker started" in output and "worker stopped" in output
    assert "Application shutdown complete" in output
