"""Alert latency: from sending an urgent check-in to its webhook verified at the receiver.

Each alert is a different patient's check-in answering yes to "A seizure?", so each raises a new
urgent flag (one open flag per patient and rule) and so a new event.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from bench.plans import urgent_check_in
from bench.population import BenchPatient
from bench.receiver import Receiver

RECEIPT_TIMEOUT_SECONDS = 60.0
PAUSE_SECONDS = 0.05


@dataclass
class AlertResult:
    latencies_ms: list[float] = field(default_factory=list)
    # Of each latency, the part until the check-in was answered (the rest is delivery).
    answered_ms: list[float] = field(default_factory=list)
    refused_requests: int = 0  # check-ins not answered 201 with an urgent flag
    lost: int = 0  # no verified webhook within the timeout
    seconds: float = 0.0

    def percentile(self, p: float, answered: bool = False) -> float | None:
        values = self.answered_ms if answered else self.latencies_ms
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
) -> AlertResult:
    """One alert at a time, each sent once the last one's webhook arrived (alerts are rare: a queue
    of our own making would measure the queue). Stops after `seconds` or when `patients` run out.
    `tokens` maps a patient id to their access token."""
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
            arrived = await _arrival(receiver, pid, sent + RECEIPT_TIMEOUT_SECONDS)
            if arrived is None:
                result.lost += 1
            else:
                result.latencies_ms.append((arrived - sent) * 1000)
                result.answered_ms.append((answered - sent) * 1000)
            await asyncio.sleep(pause)
    result.seconds = time.perf_counter() - started
    return result


async def _arrival(receiver: Receiver, patient_id: str, deadline: float) -> float | None:
    while time.perf_counter() < deadline:
        arrived = receiver.arrival(patient_id)
        if arrived is not None:
            return arrived
        await asyncio.sleep(0.002)
    return None


async def subscribe(url: str, admin_email: str, password: str) -> Receiver:
    """A receiver on loopback, registered as the organization's endpoint for urgent flags by its
    admin, through the API (sign-in, POST /v1/webhook-endpoints), as a clinic would."""
    receiver = Receiver().start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            signed_in = await client.post(
                "/v1/auth/token", data={"username": admin_email, "password": password}
            )
            signed_in.raise_for_status()
            created = await client.post(
                "/v1/webhook-endpoints",
                json={
                    "url": receiver.url,
                    "events": ["flag.created", "flag.escalated"],
                    "min_severity": "urgent",
                },
                headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"},
            )
            created.raise_for_status()
    except BaseException:
        receiver.stop()
        raise
    receiver.secret = created.json()["secret"]
    return receiver
