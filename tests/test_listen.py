"""`symptrack listen`, run as a developer runs it (a real process on a free port): it verifies every
delivery with Standard Webhooks, answers 200 or 400, and prints what arrived; the app's own delivery
reaches it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

import models.examples as ex
from api.app import create_app
from services.alerting.signing import new_secret
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import check_in, day
from tests.world import build_world

SYMPTRACK = str(Path(sys.executable).with_name("symptrack"))


class Listener:
    """A `symptrack listen` process; its output read line by line as it comes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(
            [SYMPTRACK, "listen", "--port", "0", *args],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.line_matching(lambda line: line.startswith("Listening on "))
        self.url = first.split()[2]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def line_matching(self, wanted: Callable[[str], bool], within: float = 15.0) -> str:
        deadline = time.monotonic() + within
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if wanted(line):
                return line
            seen.append(line)
        raise AssertionError(f"no such line; the listener printed {seen}")

    def block(self, first: Callable[[str], bool]) -> list[str]:
        """The lines of one delivery: from the line `first` picks to the blank line that ends it.
        They are printed before the delivery is answered, so they are all out by then."""
        lines = [self.line_matching(first)]
        while line := self.line_matching(lambda _line: True):
            lines.append(line)
        return lines

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=10)
        return "\n".join(list(self.lines.queue))


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def listener(secret: str) -> Iterator[Listener]:
    # The secret from the environment, as `SYMPTRACK_LISTEN_SECRET=... symptrack listen` gives it.
    running = Listener(env={"SYMPTRACK_LISTEN_SECRET": secret})
    yield running
    running.stop()


def _signed(secret: str, body: str, message_id: str = ex.EVENT_ID) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
        "content-type": "application/json",
    }


FLAG_BODY = json.dumps(
    {
        "type": "flag.created",
        "timestamp": ex.CREATED_AT,
        "data": {"flag": ex.FLAG, "patient_id": ex.PATIENT_ID},
    }
)


def test_a_verified_delivery_is_answered_200_and_printed(listener: Listener, secret: str) -> None:
    answer = httpx.post(listener.url, content=FLAG_BODY, headers=_signed(secret, FLAG_BODY))
    assert answer.status_code == 200
    block = listener.block(lambda line: "flag.created" in line)
    assert "signature verified" in block[0] and "200" in block[0]
    text = "\n".join(block)
    assert f"webhook-id  {ex.EVENT_ID}" in text
    assert "anaphylaxis" in text and "severity urgent" in text and ex.FLAG["reason"] in text
    assert f"patient_id  {ex.PATIENT_ID}" in text and f"flag_id     {ex.FLAG_ID}" in text


def test_tampered_stale_and_unsigned_deliveries_are_refused_400(listener: Listener, secret: str) -> None:
    headers = _signed(secret, FLAG_BODY)
    tampered = FLAG_BODY.replace('"urgent"', '"routine"')
    assert httpx.post(listener.url, content=tampered, headers=headers).status_code == 400
    assert "signature INVALID" in listener.block(lambda line: line.startswith("-->"))[0]

    other = _signed(new_secret(), FLAG_BODY)  # signed, but with another endpoint's secret
    assert httpx.post(listener.url, content=FLAG_BODY, headers=other).status_code == 400
    assert "signature INVALID" in listener.block(lambda line: line.startswith("-->"))[0]

    stale = dict(headers)
    old = datetime.now(UTC) - timedelta(hours=1)
    stale["webhook-timestamp"] = str(int(old.timestamp()))
    stale["webhook-signature"] = Webhook(secret).sign(ex.EVENT_ID, old, FLAG_BODY)
    assert httpx.post(listener.url, content=FLAG_BODY, headers=stale).status_code == 400
    assert "signature INVALID" in listener.block(lambda line: line.startswith("-->"))[0]

    assert httpx.post(listener.url, content=FLAG_BODY).status_code == 400
    assert "signature INVALID" in listener.block(lambda line: line.startswith("-->"))[0]
    # And a good one still passes after them.
    assert httpx.post(listener.url, content=FLAG_BODY, headers=_signed(secret, FLAG_BODY)).status_code == 200


def test_a_replayed_delivery_is_acknowledged_as_a_duplicate_not_shown_as_new(
    listener: Listener, secret: str
) -> None:
    """Standard Webhooks: receivers dedupe by webhook-id. The same verified id again (captured bytes
    replayed within the tolerance, or the sender's retry) is answered 200, so the sender stops, and
    printed as a duplicate, never as a new alert (issue 25, 7b)."""
    headers = _signed(secret, FLAG_BODY, "msg_replayed")
    assert httpx.post(listener.url, content=FLAG_BODY, headers=headers).status_code == 200
    assert "signature verified" in listener.block(lambda line: "flag.created" in line)[0]
    for _ in range(2):  # the very same bytes and headers, then a retry signed afresh
        again = httpx.post(listener.url, content=FLAG_BODY, headers=headers)
        assert again.status_code == 200
        block = listener.block(lambda line: line.startswith("-->"))
        assert (
            "duplicate" in block[0] and "msg_replayed" in block[0] and "flag.created" not in "\n".join(block)
        )
        headers = _signed(secret, FLAG_BODY, "msg_replayed")
    # A forged one under the same id is still refused; another id is a new alert.
    forged = {
        **headers,
        "webhook-signature": _signed(new_secret(), FLAG_BODY, "msg_replayed")["webhook-signature"],
    }
    assert httpx.post(listener.url, content=FLAG_BODY, headers=forged).status_code == 400
    assert "signature INVALID" in listener.block(lambda line: line.startswith("-->"))[0]
    assert (
        httpx.post(listener.url, content=FLAG_BODY, headers=_signed(secret, FLAG_BODY, "msg_new")).status_code
        == 200
    )
    assert "signature verified" in listener.block(lambda line: line.startswith("-->"))[0]


def test_the_secret_from_a_file_stays_out_of_ps(secret: str, tmp_path: Path) -> None:
    path = tmp_path / "listen.secret"
    path.write_text(secret + "\n")
    running = Listener("--secret-file", str(path))
    try:
        command_line = Path(f"/proc/{running.process.pid}/cmdline").read_bytes().decode()
        assert secret not in command_line and str(path) in command_line
        assert (
            httpx.post(running.url, content=FLAG_BODY, headers=_signed(secret, FLAG_BODY)).status_code == 200
        )
        assert "signature verified" in running.block(lambda line: line.startswith("-->"))[0]
    finally:
        running.stop()
    path.write_text("not-a-secret\n")
    result = subprocess.run(
        [SYMPTRACK, "listen", "--port", "0", "--secret-file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "--secret-file" in result.stderr and "not-a-secret" not in result.stderr


def test_the_help_says_secret_shows_in_ps() -> None:
    result = subprocess.run(
        [SYMPTRACK, "listen", "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    text = " ".join(result.stdout.split())
    assert "--secret-file" in text and "visible" in text and "ps" in text


def test_a_secret_that_is_not_one_is_refused_at_start() -> None:
    result = subprocess.run(
        [SYMPTRACK, "listen", "--port", "0", "--secret", "not-a-secret"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "whsec_" in result.stderr


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A receiver on loopback over http: what an operator allows with the two variables.
    return settings_for(database_url, webhook_allow_http=True, webhook_allow_private_networks=True)


@pytest.fixture
async def live_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its in-process worker, as `symptrack serve` runs it."""
    application = create_app(settings, run_worker=True)
    async with application.router.lifespan_context(application):
        yield application


@pytest.mark.one_database
async def test_the_apps_own_delivery_of_an_urgent_flag_arrives_verified(live_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=live_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        world = await build_world(live_app)
        admin = world["admin_a"].headers
        body = {"url": "http://127.0.0.1:9/", "events": ["flag.created"], "min_severity": "urgent"}
        created = (await client.post("/v1/webhook-endpoints", headers=admin, json=body)).json()
        running = Listener("--secret", created["secret"])
        try:
            patch = {"url": running.url}
            assert (
                await client.patch(f"/v1/webhook-endpoints/{created['id']}", headers=admin, json=patch)
            ).status_code == 200
            answer = await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
            # Waited for off the event loop: the app's worker runs on it and must send meanwhile.
            block = await asyncio.to_thread(running.block, lambda line: "flag.created" in line)
        finally:
            running.stop()
    assert "signature verified" in block[0]
    text = "\n".join(block)
    [flag] = answer["flags"]
    assert "seizure  severity urgent  status open" in text and "Reported a seizure." in text
    assert f"patient_id  {world['patient_a'].patient_id}" in text and flag["id"] in text
