"""Alert latency: from sending an urgent check-in to its webhook verified at the receiver.

Each alert is a different patient's check-in answering yes to "A seizure?", so each raises a new
urgent flag (one open flag per patient and rule) and so a new event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.plans import urgent_check_in
from bench.population import BenchPatient
from bench.receiver import DEFAULT_PATH, Receiver
from bench.server import free_port

RECEIPT_TIMEOUT_SECONDS = 60.0
PAUSE_SECONDS = 0.05
# The fan-out: 12 endpoints, 10 good, one nothing listens on, one that answers after 10 s.
GOOD_ENDPOINTS = 10
SLOW_SECONDS = 10.0
# Issue 22: urgent check-ins at 3 a second to a receiver that answers in 2 s, through a worker's kill.
PACED_RATE = 3.0
PACED_ANSWER_SECONDS = 2.0


@dataclass
class AlertResult:
    # Until the alert was verified at every path waited for (one path: its one receipt).
    latencies_ms: list[float] = field(default_factory=list)
    # Of each latency, the part until the check-in was answered (the rest is delivery).
    answered_ms: list[float] = field(default_factory=list)
    # Every single verified receipt, at each path waited for.
    each_ms: list[float] = field(default_factory=list)
    refused_requests: int = 0  # check-ins not answered 201 with an urgent flag
    lost: int = 0  # not verified at every path within the timeout
    seconds: float = 0.0

    def percentile(self, p: float, answered: bool = False) -> float | None:
        return percentile(self.answered_ms if answered else self.latencies_ms, p)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def send_alerts(
    url: str,
    receiver: Receiver,
    patients: list[BenchPatient],
    tokens: dict[str, str],
    *,
    seconds: float,
    pause: float = PAUSE_SECONDS,
    paths: list[str] | None = None,
    alive: Callable[[], bool] = lambda: True,
) -> AlertResult:
    """One alert at a time, each sent once the last one's webhook arrived (alerts are rare: a queue
    of our own making would measure the queue) at every one of `paths` (by default the receiver's
    one endpoint). Stops after `seconds` or when `patients` run out. `tokens` maps a patient id to
    their access token. An alert is lost at once when `alive()` turns false (the sender died)."""
    paths = paths or [DEFAULT_PATH]
    result = AlertResult()
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=RECEIPT_TIMEOUT_SECONDS) as client:
        for patient in patients:
            if time.perf_counter() - started > seconds:
                break
            pid = str(patient.patient_id)
            body = urgent_check_in(patient, datetime.now(UTC))
            sent = time.perf_counter()
            try:
                response = await client.post(
                    "/v1/patients/me/check-ins", json=body, headers={"Authorization": f"Bearer {tokens[pid]}"}
                )
            except httpx.HTTPError:
                result.refused_requests += 1
                continue
            answered = time.perf_counter()
            flags = response.json().get("flags", []) if response.status_code == 201 else []
            if not any(flag["severity"] == "urgent" for flag in flags):
                result.refused_requests += 1
                continue
            arrived = await _arrivals(receiver, pid, paths, sent + RECEIPT_TIMEOUT_SECONDS, alive)
            if arrived is None:
                result.lost += 1
            else:
                result.latencies_ms.append((max(arrived) - sent) * 1000)
                result.answered_ms.append((answered - sent) * 1000)
                result.each_ms.extend((at - sent) * 1000 for at in arrived)
            await asyncio.sleep(pause)
    result.seconds = time.perf_counter() - started
    return result


async def paced_alerts(
    url: str,
    receiver: Receiver,
    patients: list[BenchPatient],
    tokens: dict[str, str],
    *,
    rate: float,
    seconds: float,
    midway: Callable[[], Coroutine[Any, Any, None]] | None = None,
    alive: Callable[[], bool] = lambda: True,
) -> AlertResult:
    """Urgent check-ins at `rate` a second for `seconds` (open loop: each on schedule, whether or not
    the earlier ones arrived), each timed until its webhook is verified at the receiver's one
    endpoint; `midway()` starts (beside them) once half of them are sent. Returns once it ended and
    every alert arrived or was lost (not verified within RECEIPT_TIMEOUT_SECONDS of its check-in, or
    `alive()` turned false)."""
    result = AlertResult()
    chosen = patients[: max(1, int(rate * seconds))]
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=RECEIPT_TIMEOUT_SECONDS) as client:

        async def one(patient: BenchPatient) -> None:
            pid = str(patient.patient_id)
            sent = time.perf_counter()
            try:
                response = await client.post(
                    "/v1/patients/me/check-ins",
                    json=urgent_check_in(patient, datetime.now(UTC)),
                    headers={"Authorization": f"Bearer {tokens[pid]}"},
                )
            except httpx.HTTPError:
                result.refused_requests += 1
                return
            answered = time.perf_counter()
            flags = response.json().get("flags", []) if response.status_code == 201 else []
            if not any(flag["severity"] == "urgent" for flag in flags):
                result.refused_requests += 1
                return
            arrived = await _arrivals(receiver, pid, [DEFAULT_PATH], sent + RECEIPT_TIMEOUT_SECONDS, alive)
            if arrived is None:
                result.lost += 1
            else:
                result.latencies_ms.append((arrived[0] - sent) * 1000)
                result.answered_ms.append((answered - sent) * 1000)
                result.each_ms.append((arrived[0] - sent) * 1000)

        sending: list[asyncio.Task[None]] = []
        for n, patient in enumerate(chosen):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            if n == len(chosen) // 2 and midway is not None:
                sending.append(asyncio.create_task(midway()))
            sending.append(asyncio.create_task(one(patient)))
        await asyncio.gather(*sending)
    result.seconds = time.perf_counter() - started
    return result


async def _arrivals(
    receiver: Receiver, patient_id: str, paths: list[str], deadline: float, alive: Callable[[], bool]
) -> list[float] | None:
    while time.perf_counter() < deadline and alive():
        arrived = receiver.arrivals(patient_id, paths)
        if arrived is not None:
            return arrived
        await asyncio.sleep(0.002)
    return None


@dataclass
class Admin:
    """The bench organization's admin, signed in to the API: manages its webhook endpoints, as a
    clinic would (POST and PATCH /v1/webhook-endpoints)."""

    url: str
    token: str

    async def register(self, endpoint_url: str) -> tuple[str, str]:
        """A new endpoint for urgent flags; returns its id and signing secret."""
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            created = await client.post(
                "/v1/webhook-endpoints",
                json={
                    "url": endpoint_url,
                    "events": ["flag.created", "flag.escalated"],
                    "min_severity": "urgent",
                },
                headers={"Authorization": f"Bearer {self.token}"},
            )
            created.raise_for_status()
        return str(created.json()["id"]), str(created.json()["secret"])

    async def set_enabled(self, endpoint_ids: list[str], enabled: bool) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            for endpoint_id in endpoint_ids:
                changed = await client.patch(
                    f"/v1/webhook-endpoints/{endpoint_id}",
                    json={"enabled": enabled},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                changed.raise_for_status()

    async def enable_only(self, keep: str) -> None:
        """Every endpoint of the organization disabled but `keep`, which is enabled."""
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            listed = await client.get(
                "/v1/webhook-endpoints", headers={"Authorization": f"Bearer {self.token}"}
            )
            listed.raise_for_status()
        wrong = [e for e in listed.json() if e["enabled"] != (str(e["id"]) == keep)]
        for endpoint in wrong:
            await self.set_enabled([str(endpoint["id"])], str(endpoint["id"]) == keep)

    async def attempted(self, endpoint_id: str) -> int:
        """How many of the endpoint's (latest 500) deliveries were tried at least once."""
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            listed = await client.get(
                f"/v1/webhook-endpoints/{endpoint_id}/deliveries",
                params={"limit": 500},
                headers={"Authorization": f"Bearer {self.token}"},
            )
            listed.raise_for_status()
        return sum(1 for delivery in listed.json()["items"] if delivery["attempts"] > 0)


async def sign_in(url: str, email: str, password: str) -> Admin:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        signed_in = await client.post("/v1/auth/token", data={"username": email, "password": password})
        signed_in.raise_for_status()
    return Admin(url, signed_in.json()["access_token"])


async def subscribe(admin: Admin) -> tuple[Receiver, str]:
    """A receiver on loopback, registered as the organization's endpoint for urgent flags by its
    admin; returns it and the endpoint's id."""
    receiver = Receiver().start()
    try:
        endpoint_id, receiver.secret = await admin.register(receiver.url)
    except BaseException:
        receiver.stop()
        raise
    return receiver, endpoint_id


@dataclass
class FanOut:
    good_paths: list[str]  # the receiver's paths the good endpoints point at
    endpoint_ids: list[str]  # all of them: good, unreachable and slow
    unreachable_id: str
    slow_path: str


async def fan_out(admin: Admin, receiver: Receiver) -> FanOut:
    """The organization's 12 endpoints: 10 good paths on the receiver (each with the secret of its
    own endpoint), one port nothing listens on (connection refused) and one path that answers only
    after SLOW_SECONDS."""
    good = [f"/good/{n}" for n in range(GOOD_ENDPOINTS)]
    ids = []
    for path in good:
        endpoint_url = receiver.add_path(path)
        endpoint_id, receiver.routes[path].secret = await admin.register(endpoint_url)
        ids.append(endpoint_id)
    unreachable, _ = await admin.register(f"http://127.0.0.1:{free_port()}/unreachable")
    slow_path = "/slow"
    slow, receiver.routes[slow_path].secret = await admin.register(receiver.add_path(slow_path, SLOW_SECONDS))
    return FanOut(good, [*ids, unreachable, slow], unreachable, slow_path)
