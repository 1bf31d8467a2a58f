"""Fair shares: bulk writes and heavy reads wait for a slot, per caller and per process.

One process serves everything on one event loop, first come, first served. Two kinds of request can
fill it for everyone else:

- bulk writes (doses and sync batches, what a phone sends): under a flood of them an urgent check-in's
  every step queues behind theirs;
- heavy reads (the printable report, the CSV and FHIR exports, a summary over more than
  `HEAVY_SUMMARY_DAYS` days, a panel page of more than `HEAVY_PANEL_ROWS` rows): one patient looping
  their own 3-year report moved another patient's summary from 28 ms to 1.3 s.

Each kind therefore runs at most a few at a time in this process (`SYMPTRACK_BULK_WRITE_SLOTS`,
`SYMPTRACK_HEAVY_READ_SLOTS`) and, first, at most a few at a time per caller
(`SYMPTRACK_BULK_WRITE_SLOTS_PER_CALLER`, `SYMPTRACK_HEAVY_READ_SLOTS_PER_CALLER`): a caller over
their share waits for one of their own slots without taking a process slot meanwhile, so one caller
never holds all of the process's. Everything else (check-ins, the other entries, every light read)
passes at once.

The wait happens here, at the edge, before the body is read and before any dependency runs: a waiting
request holds no database connection, no session, no pool slot. It is bounded: a request that has
not had its slots within `SYMPTRACK_FAIR_SHARE_WAIT_SECONDS` is answered 429 (problem+json, with
Retry-After) rather than piling up. A slot is held until the answer is sent in full (an export's
stream included) and given back however the request ends: answered, failed, cancelled, or its client
gone.

Who the caller is comes from the bearer token's signature, checked in memory (no query): the user it
names. A request without a valid token is not held here (the route answers it 401 at once, without
doing the heavy work).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import too_many_requests
from services.accounts.token_cache import TokenCache, verified_claims
from services.errors import DomainError
from services.settings import Settings

SYNC_PATH = "/v1/sync"
DOSES_SUFFIX = "/doses"
# A summary over more local days than this, or a panel page of more rows, is a heavy read (the
# defaults, 30 days and 50 rows, and the 90-day summary clinicians read are not).
HEAVY_SUMMARY_DAYS = 92
HEAVY_PANEL_ROWS = 100
CLIENT_GONE = 499  # nginx's "client closed request": what the access log and metrics say of one
# Reports and exports are heavy whatever their window: charts, and a row per entry.
HEAVY_PATIENT_READS = frozenset({"report", "export.csv", "fhir"})


def is_bulk_write(scope: Scope) -> bool:
    if scope["type"] != "http" or scope.get("method") != "POST":
        return False
    path = str(scope.get("path", ""))
    return path == SYNC_PATH or (path.startswith("/v1/patients/") and path.endswith(DOSES_SUFFIX))


def _query(scope: Scope) -> dict[str, list[str]]:
    return parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _window_days(params: dict[str, list[str]]) -> int:
    """The days a summary asks for, as far as the query says: without `from` it is the default 30;
    an unreadable date is a 422 the route answers, light. Without `to` it ends today (a day more, for
    the zones ahead of the server's)."""
    try:
        start = date.fromisoformat(_first(params, "from") or "")
    except ValueError:
        return 0
    to = _first(params, "to")
    try:
        end = date.fromisoformat(to) if to is not None else date.today() + timedelta(days=1)
    except ValueError:
        return 0
    return (end - start).days + 1


def is_heavy_read(scope: Scope) -> bool:
    if scope["type"] != "http" or scope.get("method") != "GET":
        return False
    parts = str(scope.get("path", "")).split("/")
    if parts[1:3] == ["v1", "panel"] and len(parts) == 3:
        limit = _first(_query(scope), "limit") or ""
        return limit.isdigit() and int(limit) > HEAVY_PANEL_ROWS
    if len(parts) != 5 or parts[1:3] != ["v1", "patients"]:
        return False
    if parts[4] in HEAVY_PATIENT_READS:
        return True
    return parts[4] == "summary" and _window_days(_query(scope)) > HEAVY_SUMMARY_DAYS


def caller_of(scope: Scope, settings: Settings, tokens: TokenCache | None = None) -> str | None:
    """The user a valid access token names, checked in memory (once per token with the app's
    verified tokens); None without one."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            try:
                return str(verified_claims(settings, token.strip(), tokens).user_id)
            except DomainError:
                return None
    return None


@dataclass
class _Share:
    semaphore: asyncio.Semaphore
    users: int = 0  # holding or waiting for one of its slots; at 0 the share is forgotten


class Slots:
    """The slots of one kind of request in one app: `per_process` at a time in all, `per_caller` at a
    time per caller (0: no limit). `waiting` and `running` are what /metrics and the tests read."""

    def __init__(self, per_process: int, per_caller: int, wait_seconds: float) -> None:
        self.process = asyncio.Semaphore(per_process) if per_process > 0 else None
        self.per_caller = per_caller
        self.wait_seconds = wait_seconds
        self.callers: dict[str, _Share] = {}
        self.waiting = 0
        self.running = 0

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.wait_seconds))

    async def acquire(self, caller: str | None) -> bool:
        """Waits for the caller's slot, then the process's; False when the wait ran out (nothing is
        held then). Holding neither while waiting for the first: a caller over their share does not
        take a process slot from anyone."""
        share = None
        if self.per_caller > 0 and caller is not None:
            share = self.callers.get(caller)
            if share is None:
                share = self.callers[caller] = _Share(asyncio.Semaphore(self.per_caller))
            share.users += 1
        held_own = held_process = False
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_seconds):
                if share is not None:
                    await share.semaphore.acquire()
                    held_own = True
                if self.process is not None:
                    await self.process.acquire()
                    held_process = True
        except TimeoutError:
            pass
        except BaseException:  # cancelled (the server shutting down): give back what was taken
            self._give_back(caller, share, held_own, held_process)
            raise
        finally:
            self.waiting -= 1
        if (share is not None and not held_own) or (self.process is not None and not held_process):
            self._give_back(caller, share, held_own, held_process)
            return False
        self.running += 1
        return True

    def release(self, caller: str | None) -> None:
        self.running -= 1
        share = self.callers.get(caller) if self.per_caller > 0 and caller is not None else None
        self._give_back(caller, share, share is not None, self.process is not None)

    def _give_back(self, caller: str | None, share: _Share | None, own: bool, process: bool) -> None:
        if process and self.process is not None:
            self.process.release()
        if share is not None:
            if own:
                share.semaphore.release()
            share.users -= 1
            if share.users == 0 and caller is not None:
                del self.callers[caller]


def _too_busy(retry_after: int) -> tuple[dict[str, object], bytes]:
    return too_many_requests(
        "Too many of your requests of this kind are in progress; try again later.", retry_after
    )


class FairShareGate:
    def __init__(self, app: ASGIApp, bulk: Slots, heavy: Slots, settings: Settings) -> None:
        self.app = app
        self.bulk = bulk
        self.heavy = heavy
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slots = self.bulk if is_bulk_write(scope) else self.heavy if is_heavy_read(scope) else None
        if slots is None or (slots.process is None and slots.per_caller <= 0):
            await self.app(scope, receive, send)
            return
        callers = getattr(scope["app"].state, "caller_cache", None)
        caller = caller_of(scope, self.settings, callers.tokens if callers is not None else None)
        if caller is None and slots is self.heavy:
            await self.app(scope, receive, send)  # no valid token: a 401, nothing heavy
            return
        if slots is self.heavy:
            got, receive = await _acquire_unless_gone(slots, caller, receive)
            if got is None:  # the client left while it waited: nothing to do, nobody to answer
                with contextlib.suppress(OSError, RuntimeError):  # said for the access log and metrics
                    await send({"type": "http.response.start", "status": CLIENT_GONE, "headers": []})
                    await send({"type": "http.response.body", "body": b""})
                return
        else:
            got = await slots.acquire(caller)  # the body is still to be read: not listened to here
        if not got:
            start, body = _too_busy(slots.retry_after)
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release(caller)


async def _acquire_unless_gone(
    slots: Slots, caller: str | None, receive: Receive
) -> tuple[bool | None, Receive]:
    """A heavy read (a GET: no body) waits for its slots while listening for its client: None if the
    client left first (no slot is then held). The messages read meanwhile are handed on to the app."""
    heard = [await receive()]  # the request itself
    if heard[0]["type"] == "http.disconnect":
        return None, receive
    acquiring = asyncio.ensure_future(slots.acquire(caller))
    listening: asyncio.Future[Message] | None = None
    try:
        while True:
            listening = asyncio.ensure_future(receive())
            await asyncio.wait({listening, acquiring}, return_when=asyncio.FIRST_COMPLETED)
            if listening.done():
                heard.append(listening.result())
                listening = None
                if heard[-1]["type"] == "http.disconnect":
                    break
            if acquiring.done():
                break
    finally:
        if listening is not None:
            listening.cancel()
        if not acquiring.done():
            acquiring.cancel()
            await asyncio.gather(acquiring, return_exceptions=True)  # it gives back what it took
    if acquiring.cancelled():
        return None, receive
    got: bool = acquiring.result()
    if got is False:
        return False, receive

    async def replay() -> Message:
        return heard.pop(0) if heard else await receive()

    return True, replay
