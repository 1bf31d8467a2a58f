"""What one request costs the API process in CPU, whatever else the machine is doing (issue 27).

    python -m bench.request_cost                      # CPU us per request: /healthz, /v1/me, dose, summary
    python -m bench.request_cost --profile DIR        # and a cProfile of each, written to DIR

A scratch `symptrack_bench_*` database (a few patients with 90 days of history, as `make bench` makes
them) and `symptrack serve --no-worker` with the bench's production settings (rate limits on, an
access log line per request). This process sends each scenario's requests, a few at a time, and reads
the server's user + system CPU seconds from /proc before and after: CPU per request does not depend on
how busy the machine is, where requests per second do. `/healthz` (no auth, no database) through the
same middleware is the floor each row is compared with: "x healthz" is its cost over the row's, the
share of /healthz's throughput the row would reach on a core of its own (issue 27 asks /v1/me >= 0.5).

With `--profile`, the server runs under a profiler switched on (SIGUSR1) and written out (SIGUSR2)
around each scenario's measured requests, in a second pass. It counts CPU seconds, not wall time (the
machine may be busy), and slows everything down: its times say where the CPU goes, never what a request
costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import datagen, pg, population, procs, server
from bench.config import BenchConfig
from bench.plans import dose_body
from bench.run import Bench
from bench.tokens import mint, settings_from

PATIENTS = 40
HISTORY_DAYS = 90
SUMMARY_DAYS = 90
REGIMEN_DAYS = 3000  # regimens reach this far back before the history: room for every dose's own day


@dataclass(frozen=True)
class Probe:
    name: str
    # The n-th request: method, path, token, JSON body.
    request: Callable[[int], tuple[str, str, str | None, Any]]


@dataclass
class Cost:
    name: str
    requests: int
    cpu_us: float  # median over the rounds
    spread: float  # (max - min) / median of the rounds
    vs_healthz: float  # median over the rounds of /healthz's cost that round over this probe's


def _probes(people: population.Population, tokens: dict[uuid.UUID, str], now: datetime) -> list[Probe]:
    patients = people.patients
    # Each dose on a (patient, local day) of its own before the history, so no day's total crosses the
    # regimen's maximum and no rule fires (as bench/plans.py does under load).
    first = HISTORY_DAYS + 10
    doses = [(p, p.today(now) - timedelta(days=first + n)) for n in range(REGIMEN_DAYS) for p in patients]

    def healthz(_n: int) -> tuple[str, str, str | None, Any]:
        return "GET", "/healthz", None, None

    def me(n: int) -> tuple[str, str, str | None, Any]:
        return "GET", "/v1/me", tokens[patients[n % len(patients)].user_id], None

    def dose(n: int) -> tuple[str, str, str | None, Any]:
        patient, day = doses[n]
        body = {**dose_body(patient, day), "id": str(uuid.uuid4())}
        return "POST", "/v1/patients/me/doses", tokens[patient.user_id], body

    def summary(n: int) -> tuple[str, str, str | None, Any]:
        patient = patients[n % len(patients)]
        provider = people.providers[patient.provider_index]
        today = patient.today(now)
        start = today - timedelta(days=SUMMARY_DAYS - 1)
        path = f"/v1/patients/{patient.patient_id}/summary?from={start}&to={today}"
        return "GET", path, tokens[provider.user_id], None

    return [
        Probe("GET /healthz", healthz),
        Probe("GET /v1/me", me),
        Probe("POST dose", dose),
        Probe("GET summary (90 days, provider)", summary),
    ]


class Sender:
    """Sends a probe's requests `concurrency` at a time over keep-alive connections; every answer
    must be a success, or the numbers would price an error path."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        self.base_url = base_url
        self.concurrency = concurrency
        self.sent: dict[str, int] = {}

    async def send(self, probe: Probe, count: int) -> None:
        first = self.sent.get(probe.name, 0)
        self.sent[probe.name] = first + count
        queue = iter(range(first, first + count))
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=60) as client:

            async def one_connection() -> None:
                for n in queue:
                    method, path, token, body = probe.request(n)
                    headers = {"authorization": f"Bearer {token}"} if token else {}
                    answer = await client.request(method, path, headers=headers, json=body)
                    if answer.status_code >= 300:
                        raise RuntimeError(f"{probe.name}: {answer.status_code} {answer.text[:300]}")

            await asyncio.gather(*(one_connection() for _ in range(self.concurrency)))


async def measure(
    api: server.Server, sender: Sender, probes: list[Probe], requests: int, rounds: int
) -> list[Cost]:
    """Round after round, each probe in turn: a machine whose load changes weighs on every probe of a
    round alike, and each round's ratio to /healthz (the first probe) is taken within the round."""
    for probe in probes:
        await sender.send(probe, max(50, requests // 5))  # warm-up: caches, statement cache, pool
    samples: dict[str, list[float]] = {probe.name: [] for probe in probes}
    for _ in range(rounds):
        for probe in probes:
            procs.wait_idle(api.pid)
            before = procs.cpu_seconds(api.pid)
            await sender.send(probe, requests)
            procs.wait_idle(api.pid)  # what the answers left behind (access log lines) is theirs too
            samples[probe.name].append((procs.cpu_seconds(api.pid) - before) / requests * 1e6)
    floor = samples[probes[0].name]
    costs = []
    for probe in probes:
        mine = samples[probe.name]
        median = statistics.median(mine)
        ratio = statistics.median(f / m for f, m in zip(floor, mine, strict=True))
        costs.append(Cost(probe.name, requests * rounds, median, (max(mine) - min(mine)) / median, ratio))
    return costs


async def profile(api: server.Server, sender: Sender, probes: list[Probe], requests: int, out: Path) -> None:
    for probe in probes:
        await sender.send(probe, 50)
        procs.wait_idle(api.pid)
        stats = out / f"{probe.name.split(' (')[0].replace(' ', '_').replace('/', '_').strip('_')}.prof"
        await asyncio.to_thread(_expect, out, stats)
        os.kill(api.pid, signal.SIGUSR1)
        await sender.send(probe, requests)
        procs.wait_idle(api.pid)
        os.kill(api.pid, signal.SIGUSR2)
        await asyncio.to_thread(_wait_for, stats)
        print(f"  {probe.name}: {stats}", file=sys.stderr)


def _expect(out: Path, stats: Path) -> None:
    stats.unlink(missing_ok=True)
    (out / "next").write_text(str(stats))


def _wait_for(path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def serve_profiled(out: Path, argv: list[str]) -> None:
    """`symptrack serve`, with cProfile switched on by SIGUSR1 and written by SIGUSR2 to the path that
    `out/next` names (the profiler runs in the event loop's thread, where signal handlers run)."""
    from api.cli import main

    profiler: list[cProfile.Profile] = []

    def start(_signum: int, _frame: Any) -> None:
        profiler.append(cProfile.Profile(time.process_time))  # CPU, not wall time: the machine is busy
        profiler[-1].enable()

    def stop(_signum: int, _frame: Any) -> None:
        if profiler:
            running = profiler.pop()
            running.disable()
            running.dump_stats((out / "next").read_text())

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    main(argv, standalone_mode=True)


def _table(costs: list[Cost]) -> str:
    lines = [
        "| request | requests | CPU us per request | spread of rounds | x healthz |",
        "|---|---:|---:|---:|---:|",
    ]
    for cost in costs:
        lines.append(
            f"| {cost.name} | {cost.requests:,} | {cost.cpu_us:,.0f} | {cost.spread:.0%} | "
            f"{cost.vs_healthz:.2f}x |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    config = BenchConfig.from_env()
    bench = Bench(config)
    database = await pg.create(config)
    api = None
    try:
        env = bench.server_env(database)
        pg.migrate(config, database, env)
        reach = HISTORY_DAYS + REGIMEN_DAYS + 20
        people = population.build(args.patients, args.patients, reach, datagen.password_hash())
        await datagen.load_population(database.url, people)
        await datagen.load_history(database.url, people, datagen.Span(1, HISTORY_DAYS), "history")
        await pg.analyze(database)
        now = datetime.now(UTC)
        settings = settings_from(env)
        everyone: list[population.BenchUser | population.BenchPatient] = [*people.providers, *people.patients]
        tokens = {u.user_id: mint(settings, u.user_id, u.family_id, now) for u in everyone}
        probes = _probes(people, tokens, now)
        port = server.free_port()
        serve = ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)]
        sender = Sender(f"http://127.0.0.1:{port}", args.concurrency)

        api = server.start("request_cost", [*pg.symptrack_command(config), *serve], env, port, bench.logs)
        costs = await measure(api, sender, probes, args.requests, args.rounds)
        api.stop()
        api = None
        print(_table(costs))
        print(json.dumps({c.name: round(c.cpu_us) for c in costs}), file=sys.stderr)
        if args.profile:
            out = args.profile
            argv = [config.python, "-m", "bench.request_cost", "--serve-profiled", str(out), "--", *serve]
            api = server.start("request_cost_profiled", argv, env, port, bench.logs)
            await profile(api, sender, probes, args.requests, out)
            print(f"profiles in {out} (python -m pstats FILE, or snakeviz)", file=sys.stderr)
    finally:
        if api is not None:
            api.stop()
        if not config.keep_database:
            await pg.drop(config, database)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and scenario")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every scenario (medians are shown)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections sending at once")
    parser.add_argument("--patients", type=int, default=PATIENTS)
    parser.add_argument("--profile", metavar="DIR", help="also write a cProfile of each scenario to DIR")
    parser.add_argument("--serve-profiled", metavar="DIR", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.serve_profiled:
        serve_profiled(Path(args.serve_profiled), [a for a in rest if a != "--"])
        return
    if args.profile:
        args.profile = Path(args.profile).resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
