"""Offline sync load: 500-entry requests from a few phones at once, counted by entries stored.

wrk only counts requests that finish within its run; a 500-entry sync can take longer than a whole
run, which would read as zero. So this client sends requests for `seconds`, `connections` at a
time, then waits for the last ones to finish, and divides the entries stored by the time taken. At
a few requests a second, its own cost is negligible beside the server's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

TIMEOUT_SECONDS = 600.0


@dataclass
class SyncResult:
    latencies_ms: list[float] = field(default_factory=list)
    entries: int = 0
    failed: int = 0  # requests not answered 200, and entries not answered 201
    seconds: float = 0.0

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def run(
    url: str, bodies: Iterator[tuple[str, dict[str, object]]], *, connections: int, seconds: float
) -> SyncResult:
    """`bodies` yields (token, request body) pairs, each a new phone's backlog."""
    result = SyncResult()
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_SECONDS, limits=limits) as client:

        async def phone() -> None:
            # Each connection sends one request after another until the time is up.
            while time.perf_counter() - started < seconds:
                token, body = next(bodies)
                sent = time.perf_counter()
                response = await client.post(
                    "/v1/sync", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                result.latencies_ms.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200:
                    result.failed += 1
                    continue
                statuses = [r["status"] for r in response.json()["results"]]
                result.entries += statuses.count(201)
                result.failed += len(statuses) - statuses.count(201)

        await asyncio.gather(*(phone() for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result
