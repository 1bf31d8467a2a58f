"""Fair shares (issue 25, finding 3): another patient's summary while one patient loops heavy reads.

The probe is one patient reading their own 90-day summary, one request after another at one
connection: first alone (quiet), then while one other patient loops year-long reports, exports (CSV
and FHIR) and summaries, 8 requests at a time. The loop runs in a process of its own (reading 6 MB
bodies costs the client CPU, which must not delay the probe's own timing) and discards what it reads.
The target: the probe's p95 under load at most 3x its quiet p95, in the same run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

TIMEOUT_SECONDS = 120.0
LOOPERS = 8


@dataclass
class Timings:
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def probe(url: str, path: str, token: str, seconds: float) -> Timings:
    """`path` read again and again for `seconds`, one at a time."""
    result = Timings()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_SECONDS) as client:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            sent = time.perf_counter()
            response = await client.get(path, headers=headers)
            if response.status_code != 200:
                result.failed += 1
                continue
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
    return result


async def _loop(url: str, requests: list[tuple[str, str]], seconds: float, looping: int) -> dict[str, int]:
    """`looping` clients, each going round `requests` (path, token), for `seconds`: statuses by path kind."""
    counts: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=looping)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_SECONDS, limits=limits) as client:
        started = time.perf_counter()

        async def one(offset: int) -> None:
            n = offset
            while time.perf_counter() - started < seconds:
                path, token = requests[n % len(requests)]
                n += 1
                kind = path.split("?")[0].rsplit("/", 1)[-1]
                try:
                    async with client.stream("GET", path, headers={"Authorization": f"Bearer {token}"}) as r:
                        async for _ in r.aiter_raw():
                            pass
                        counts[f"{kind} {r.status_code}"] += 1
                        if r.status_code == 429:  # as a client should: wait as told (bounded here)
                            await asyncio.sleep(min(1.0, float(r.headers.get("retry-after", "1"))))
                except httpx.HTTPError as exc:
                    counts[f"{kind} {type(exc).__name__}"] += 1

        await asyncio.gather(*(one(i) for i in range(looping)))
    return dict(counts)


def _loop_process(url: str, requests: list[tuple[str, str]], seconds: float, looping: int, out: Any) -> None:
    out.put(asyncio.run(_loop(url, requests, seconds, looping)))


@dataclass
class FairShareResult:
    quiet: Timings
    loaded: Timings
    looped: dict[str, int]

    @property
    def ratio(self) -> float | None:
        quiet, loaded = self.quiet.percentile(95), self.loaded.percentile(95)
        return loaded / quiet if quiet and loaded is not None else None


async def run(
    url: str,
    probe_path: str,
    probe_token: str,
    heavy: list[tuple[str, str]],
    *,
    seconds: float,
    warmup: float,
    looping: int = LOOPERS,
) -> FairShareResult:
    """The probe alone for `seconds`; then the heavy loop starts, and after `warmup` the probe again
    for `seconds` while it goes on."""
    await probe(url, probe_path, probe_token, min(warmup, 2.0))  # warm: statement caches, zone data
    quiet = await probe(url, probe_path, probe_token, seconds)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    looper = context.Process(
        target=_loop_process, args=(url, heavy, warmup + seconds, looping, out), name="fair-share-loop"
    )
    looper.start()
    try:
        await asyncio.sleep(warmup)
        loaded = await probe(url, probe_path, probe_token, seconds)
        looped: dict[str, int] = await asyncio.to_thread(out.get, True, warmup + seconds + TIMEOUT_SECONDS)
    finally:
        looper.join(5)
        if looper.is_alive():
            looper.kill()
    return FairShareResult(quiet, loaded, looped)
