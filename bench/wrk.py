"""The load generator: wrk (C, epoll) replaying a plan through bench/lua/plan.lua.

wrk is lean: at the floor's rate it takes a fraction of a core, and it is the same client for our
API and for both baselines, so what it costs weighs on every server alike and the ratios stay fair.
Its own CPU time is measured on every run and reported beside the results.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.config import BENCH_DIR

SCRIPT = BENCH_DIR / "lua" / "plan.lua"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class PlanRequest:
    method: str
    path: str
    token: int = 0  # 1-based index into the plan's tokens; 0: no Authorization header
    body: str = ""  # one line of JSON; each "{{id}}" becomes a fresh UUID per request


@dataclass(frozen=True)
class Plan:
    name: str
    path: Path
    lines: int


def write_plan(directory: Path, name: str, tokens: list[str], requests: Iterable[PlanRequest]) -> Plan:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.plan"
    lines = 0
    with path.open("w") as out:
        for token in tokens:
            out.write(f"T\t{token}\n")
        for r in requests:
            if "\t" in r.body or "\n" in r.body:
                raise ValueError("a plan body must be one line without tabs")
            out.write(f"R\t{r.method}\t{r.token}\t{r.path}\t{r.body}\n")
            lines += 1
    if lines == 0:
        raise ValueError(f"plan {name} has no requests")
    return Plan(name, path, lines)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    wrapped: int
    next_offset: int
    client_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (make bench does this as root)")
    return found


def run(
    url: str,
    plan: Plan,
    *,
    offset: int,
    connections: int,
    threads: int,
    seconds: float,
    timeout_seconds: float = 60.0,
) -> WrkResult:
    """One closed-loop run: `connections` keep-alive connections, each sending its next request as
    soon as the answer to the last one arrives."""
    threads = max(1, min(threads, connections))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [
            require_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={int(timeout_seconds)}s",
            "-s",
            str(SCRIPT),
            url,
            "--",
            str(plan.path),
            str(offset),
            str(random.randrange(1, 2**31)),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line[len(MARKER) :])
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
        wrapped=data["wrapped"],
        next_offset=offset + (data["most_sent_by_a_thread"] + 1) * threads,
        client_cpu_seconds=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )
