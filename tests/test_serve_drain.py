"""`symptrack serve` stopped by SIGTERM under load (issue 26): /readyz answers 503 at once while every
other request is still served for the grace, the requests in flight when it stops accepting are
answered, nothing accepted is dropped, and the process exits 0.

A real server process and a client counting answers. Writes are held in the server by a database
lock the test takes (and seen waiting there), so they are in flight across the stop whatever the
machine's speed; they are let go only once the server refuses new connections. The load clients act
as a load balancer does: they keep sending through the SIGTERM and stop once they have seen /readyz
answer 503 (and have been served after it), within the grace. The grace runs out (two processes),
or a second SIGTERM cuts it short (one process).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.platform.migrations import sync_database_url
from tests.databases import settings_for
from tests.entry_helpers import dose
from tests.test_cli import SYMPTRACK
from tests.test_rate_limits import _free_port
from tests.world import World

pytestmark = pytest.mark.slow

# The grace either runs out (a few seconds: what must happen within it is a handful of requests), or
# is cut short by a second SIGTERM (then it is long: nothing in the test races it).
GRACE_SECONDS = {"runs-out": 4.0, "second-sigterm": 60.0}
HELD_WRITERS = ("patient_a", "patient_a2", "patient_b")  # a dose each: one write per caller
EXIT_BOUND_SECONDS = 30.0  # the grace, the requests in flight, the shutdown: generous on a busy machine


class Answers:
    """What one kind of request got: answers by status, and transport failures by kind."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.failures: list[str] = []

    async def send(self, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
        try:
            response = await request()
        except httpx.ConnectError:
            self.failures.append("refused")  # never accepted: the balancer's retry goes elsewhere
            return None
        except httpx.TransportError as exc:
            self.failures.append(type(exc).__name__)  # accepted, then closed or reset unanswered
            return None
        self.statuses.append(response.status_code)
        return response

    @property
    def dropped(self) -> list[str]:
        return [failure for failure in self.failures if failure != "refused"]


class HeldWrites:
    """A dose from each of three patients, held in the server until `release`.

    SQLite (every transaction there takes the write lock, so a database lock would hold every
    request): the server's one write slot is taken by a dose whose body the client has not finished
    sending, and the others wait for that slot; the server's gauge of writes waiting says when.
    PostgreSQL: a table lock the test holds; the database says when the three inserts wait on it."""

    def __init__(self, base: str, world: World, database_url: str) -> None:
        self.base, self.world, self.database_url = base, world, database_url
        self.answers = Answers()
        self.rest_of_body = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.engine = (
            None if database_url.startswith("sqlite") else create_engine(sync_database_url(database_url))
        )
        self.holding: Any = None

    async def start(self) -> None:
        if self.engine is None:  # one holds the write slot, waiting for its body; two wait for the slot
            self.tasks += [asyncio.create_task(self._post(name, slow=True)) for name in HELD_WRITERS]
            await _until(self._waiting_for_the_slot, "two doses wait for the one holding the slot")
            return
        holder = self.engine.connect()
        self.holding = (holder, holder.begin())
        holder.execute(text("LOCK TABLE dose IN EXCLUSIVE MODE"))  # reads go on, inserts wait
        self.tasks += [asyncio.create_task(self._post(name)) for name in HELD_WRITERS]
        await _until(self._locked_out, "the doses wait on the lock")

    def release(self) -> None:
        self.rest_of_body.set()
        if self.holding is not None:
            holder, transaction = self.holding
            transaction.rollback()
            holder.close()
            self.holding = None

    def close(self) -> None:
        self.release()
        if self.engine is not None:
            self.engine.dispose()

    async def _post(self, person: str, slow: bool = False) -> None:
        body = json.dumps(dose()).encode()

        async def trickled() -> AsyncIterator[bytes]:
            yield body[:10]
            await self.rest_of_body.wait()
            yield body[10:]

        headers = {**self.world[person].headers, "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=self.base, timeout=120) as http:
            await self.answers.send(
                lambda: http.post(
                    "/v1/patients/me/doses", content=trickled() if slow else body, headers=headers
                )
            )

    async def _waiting_for_the_slot(self) -> bool:
        return await _gauge(self.base, "symptrack_bulk_writes_waiting") == len(HELD_WRITERS) - 1

    async def _locked_out(self) -> bool:
        assert self.engine is not None
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with self.engine.connect() as observer:
            return int(observer.execute(text(query)).scalar_one()) == len(HELD_WRITERS)


def _start(
    database_url: str, log: Path, grace: float, *args: str, **variables: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMPTRACK_")}
    env.update(
        SYMPTRACK_DATABASE_URL=database_url,
        SYMPTRACK_ENVIRONMENT="development",
        SYMPTRACK_SECRET_KEY=settings_for(database_url).secret_key,
        SYMPTRACK_SHUTDOWN_GRACE_SECONDS=str(grace),
        # The held writes wait for the test's lock, however long the machine takes.
        SYMPTRACK_SQLITE_BUSY_TIMEOUT_MS="120000",
        SYMPTRACK_FAIR_SHARE_WAIT_SECONDS="120",
        **{f"SYMPTRACK_{name}": value for name, value in variables.items()},
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [SYMPTRACK, "serve", "--port", str(port), *args], env=env, stdout=output, stderr=output
        )
    return process, f"http://127.0.0.1:{port}"


async def _until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        await asyncio.sleep(0.05)


async def _ready(base: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "serve stopped while starting"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            return (await http.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def _gauge(base: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        for line in (await http.get("/metrics")).text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


async def _refuses_connections(base: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            await http.get("/healthz")
    except httpx.ConnectError:
        return True
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # Connected just as the listener closed: the kernel had queued the connection (reset when the
        # socket closed), or a process took it as it stopped and closed it before a request came.
        # Either way the server no longer serves new connections; what the test guards is that
        # requests already sent are answered (the held writes, and every balancer client above).
        return True
    return False


@pytest.mark.parametrize(
    ("backend", "serve_args", "grace_ends"),
    [("sqlite", (), "second-sigterm"), ("postgresql", ("--workers", "2"), "runs-out")],
    ids=["sqlite-one-process", "postgresql-two-processes"],
)
async def test_sigterm_drains_without_dropping_a_request(
    world: World,
    database_url: str,
    backend: str,
    serve_args: tuple[str, ...],
    grace_ends: str,
    tmp_path: Path,
) -> None:
    sqlite = backend == "sqlite"
    log = tmp_path / "serve.log"
    # SQLite: one write slot, so the held writes wait in the server for it (HeldWrites).
    slots = {"BULK_WRITE_SLOTS": "1"} if sqlite else {}
    process, base = _start(database_url, log, GRACE_SECONDS[grace_ends], *serve_args, **slots)
    me = world["patient_a"].headers
    served, readiness = Answers(), Answers()
    try:
        await _until(lambda: _ready(base, process), "serve answers /readyz 200")

        held = HeldWrites(base, world, database_url)
        try:
            await held.start()

            # A load balancer's traffic: keep-alive clients, and a new connection for every request.
            unready = asyncio.Event()
            balancer_gone = asyncio.Event()
            # Per client: the `connection` header of each answer it got after /readyz said 503.
            while_unready: list[list[str]] = []

            async def keep_alive() -> None:
                seen: list[str] = []
                while_unready.append(seen)
                async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                    while not balancer_gone.is_set():
                        answer = await served.send(lambda: http.get("/v1/me", headers=me))
                        if answer is not None and unready.is_set():
                            seen.append(answer.headers.get("connection", ""))

            async def new_connections() -> None:
                seen: list[str] = []
                while_unready.append(seen)
                while not balancer_gone.is_set():
                    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                        answer = await served.send(lambda: http.get("/healthz"))
                    if answer is not None and unready.is_set():
                        seen.append(answer.headers.get("connection", ""))

            async def load_served(at_least: int) -> bool:
                return len(served.statuses) >= at_least

            load = [asyncio.create_task(keep_alive()) for _ in range(3)]
            load += [asyncio.create_task(new_connections()) for _ in range(2)]
            await _until(lambda: load_served(10), "the load is served")
            process.send_signal(signal.SIGTERM)
            # /readyz turns 503 (a probe racing the signal itself may still get its 200).
            while not unready.is_set():
                async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                    answer = await readiness.send(lambda: http.get("/readyz"))
                if answer is not None and answer.status_code == 503:
                    body = answer.json()
                    assert body["checks"] == {"database": "ok", "migrations": "ok", "shutdown": "draining"}
                    unready.set()

            async def still_serving() -> bool:
                return all(len(seen) >= 2 for seen in while_unready)

            # Everything else is still served while it says it is leaving, keep-alive connections too,
            # and those answers close their connection so the client's next request goes elsewhere.
            await _until(still_serving, "every client served twice while draining")
            balancer_gone.set()  # it has seen the 503: no more requests sent here
            await asyncio.gather(*load)
            assert all("close" in seen for seen in while_unready), while_unready
            if grace_ends == "second-sigterm":
                process.send_signal(signal.SIGTERM)

            # The grace ends: no new connection is accepted, and the held writes are still in flight.
            await _until(lambda: _refuses_connections(base), "the server stops accepting")
            assert not any(write.done() for write in held.tasks)
            # Let them go: every write accepted before the stop is answered.
            held.release()
            await asyncio.gather(*held.tasks)
        finally:
            held.close()
        returncode = await asyncio.to_thread(process.wait, EXIT_BOUND_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert returncode == 0, output[-3000:]
    assert held.answers.statuses == [201] * len(HELD_WRITERS), (held.answers.statuses, held.answers.failures)
    # All within the grace (the balancer left before it ended): nothing refused, nothing dropped.
    assert served.failures == [] and readiness.failures == [], (served.failures, readiness.failures)
    assert set(served.statuses) == {200}, served.statuses
    assert "Traceback" not in output
    if sqlite:  # the in-process delivery worker stopped with the server, after the grace
        assert "worker stopped" in output
