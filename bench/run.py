"""`make bench`: the whole benchmark in one run, against the local PostgreSQL, ending in one table.

1. A new symptrack_bench_* database, migrated by `symptrack migrate`, filled with N patients and a
   year of history (COPY); an admin made by `symptrack create-admin`; the evidence that needs no
   server (statements per request, cost per statement, query plans).
2. The baselines, each a uvicorn process inserting a dose row: the floor and the tutorial.
3. `symptrack serve --no-worker`: the framework and auth floors, doses, check-ins, sync, the 90-day
   summary and the panel; another patient's summary while one patient loops year-long reports,
   exports and summaries (fair shares); py-spy profiles of doses, check-ins, the summary and the panel.
4. Two more years of history, loaded while that API keeps running: the summary again.
5. `symptrack serve` with its delivery worker and a verifying receiver: alert latency, quiet, while
   32 connections post doses, and to 12 endpoints of which 2 are bad (unreachable, slow); then
   `symptrack serve --no-worker` beside `symptrack worker`: alert latency while doses post again; then
   beside two `symptrack worker`s, urgent check-ins at 3 a second to a receiver answering in 2 s, one
   worker killed (kill -9) midway.
6. The database is dropped; the table is printed and written to bench/results/.

Every load comes from wrk, closed loop, after a warm-up; the server is left to go idle between runs.
BENCH_ONLY=alerts: steps 1 (but the evidence) and 5 only. BENCH_ONLY=fairshare: step 1 (but the
evidence), then `symptrack serve --no-worker` for the fair-share scenario only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench import (
    alerts,
    datagen,
    explain,
    fairshare,
    machine,
    pg,
    population,
    profile,
    querycount,
    report,
    server,
    statement_cost,
    syncload,
    wrk,
)
from bench.config import BenchConfig
from bench.plans import (
    BASELINE_DAYS,
    CHECK_IN_DAYS,
    DOSE_DAYS,
    DOSES_SENT_LATER,
    PROBE_DAYS,
    PlanWriter,
    check_in_body,
    dose_body,
    sync_entries,
)
from bench.population import BenchPatient, Population
from bench.procs import CpuMeter, sending_ports, wait_idle
from bench.receiver import DEFAULT_PATH, Receiver
from bench.report import Row
from bench.tokens import TOKEN_MINUTES, mint, settings_from

ADMIN_EMAIL = f"admin@{population.EMAIL_DOMAIN}"
# Rate limits on (every request counted) but never reached by the bench's load.
RATE_LIMIT_ON = str(10**9)
KILLED_NAME = (
    f"alert at {alerts.PACED_RATE:g}/s to a {alerts.PACED_ANSWER_SECONDS:g} s receiver, "
    "1 of 2 workers killed (kill -9) midway"
)
FAN_OUT_NAME = (
    f"alert to {alerts.GOOD_ENDPOINTS} good of {alerts.GOOD_ENDPOINTS + 2} endpoints (1 unreachable, 1 slow)"
)


def _wait_for_log(process: server.Server, text: bytes, timeout: float = 60.0) -> None:
    """Until the process's log says `text` (it exits or the timeout passes: an error)."""
    deadline = time.monotonic() + timeout
    while text not in process.log_path.read_bytes():
        if process.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not log {text.decode()!r}; see {process.log_path}")
        time.sleep(0.05)


def history(days: int) -> str:
    """How a scenario names its history: "1 year", "3 years", or days when not whole years."""
    years, rest = divmod(days, 365)
    return f"{years} year{'s' if years > 1 else ''}" if years and not rest else f"{days} days"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fill_ids(value: object) -> object:
    """A plan body with real ids in place of the "{{id}}" placeholders (for requests sent from here)."""
    text = json.dumps(value)
    while "{{id}}" in text:
        text = text.replace("{{id}}", str(uuid.uuid4()), 1)
    return json.loads(text)


class Bench:
    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.rows: dict[str, Row] = {}
        self.offsets: dict[str, int] = {}  # plan name -> first line not yet sent
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self.profiles: list[str] = []
        self.query_counts: list[str] = []
        self.statement_costs = ""
        self.plans: list[str] = []
        self.peak_rss: dict[str, float] = {}
        self.results = config.results_dir
        self.logs = self.results / "logs"

    # ---- environment ---------------------------------------------------------------------------

    def server_env(self, database: pg.BenchDatabase, *, worker: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SYMPTRACK_ENVIRONMENT="production",
            SYMPTRACK_SECRET_KEY=self.config.secret_key,
            SYMPTRACK_WEBHOOK_SECRET_KEYS=json.dumps([self.config.webhook_secret_key]),
            SYMPTRACK_DATABASE_URL=database.app_url,
            SYMPTRACK_DB_POOL_SIZE=str(self.config.connections),
            SYMPTRACK_DB_MAX_OVERFLOW=str(self.config.connections),
            # The conditions: the default log level (an access log line per request) and rate
            # limits on, counted in memory; sized so that one address carrying every phone is never
            # refused (BENCH_RATE_LIMIT_*=0 turns them off).
            SYMPTRACK_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "info"),
            SYMPTRACK_SHUTDOWN_GRACE_SECONDS="0",  # no balancer to drain from: a stop is at once
            SYMPTRACK_ACCESS_TOKEN_MINUTES=str(TOKEN_MINUTES),
            # All load comes from one address and a few tokens: limits sized for people would refuse it.
            SYMPTRACK_RATE_LIMIT_PER_TOKEN_PER_MINUTE=os.environ.get(
                "BENCH_RATE_LIMIT_PER_TOKEN", RATE_LIMIT_ON
            ),
            SYMPTRACK_RATE_LIMIT_PER_ADDRESS_PER_MINUTE=os.environ.get(
                "BENCH_RATE_LIMIT_PER_ADDRESS", RATE_LIMIT_ON
            ),
        )
        if worker:
            # The receivers listen on http://127.0.0.1, which needs the two allow switches; production
            # refuses them (issue 25), so the alert scenarios run in development mode, otherwise alike.
            env.update(
                SYMPTRACK_ENVIRONMENT="development",
                SYMPTRACK_WEBHOOK_ALLOW_HTTP="true",
                SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
            )
        return env

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - started, 1)

    # ---- measuring -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def guard(self, key: str, name: str) -> AsyncIterator[None]:
        """A scenario that fails is a row saying so, and the run goes on to the next one."""
        try:
            yield
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
            self.rows[key] = Row(key=key, name=name, errors=1, note=f"failed: {message}")
            say(f"{name} failed: {message}")

    def _wrk(self, target: server.Server, plan: wrk.Plan, seconds: float, connections: int) -> wrk.WrkResult:
        result = wrk.run(
            target.url,
            plan,
            offset=self.offsets.get(plan.name, 0),
            connections=connections,
            threads=self.config.wrk_threads,
            seconds=seconds,
        )
        self.offsets[plan.name] = result.next_offset
        wait_idle(target.pid)
        return result

    def measure(
        self,
        key: str,
        name: str,
        target: server.Server,
        plan: wrk.Plan,
        *,
        connections: int | None = None,
        unit: str = "req/s",
        per_request: int = 1,
        note: str = "",
        may_wrap: bool = False,
    ) -> Row:
        """Warm up, then one measured run. `may_wrap`: the plan's lines may be reused (reads, and the
        baselines, which apply no rules, so a day's second dose changes nothing for them)."""
        connections = connections or self.config.connections
        if self.config.warmup_seconds > 0:
            self._wrk(target, plan, self.config.warmup_seconds, connections)
        meter = CpuMeter(target.pid)
        result = self._wrk(target, plan, self.config.duration_seconds, connections)
        lat = result.latency_ms
        row = Row(
            key=key,
            name=name,
            unit=unit,
            rate=result.rate * per_request,
            p50=lat["p50"],
            p95=lat["p95"],
            p99=lat["p99"],
            requests=result.requests,
            errors=result.failed,
            wrapped=0 if may_wrap else result.wrapped,
            cpu=meter.share(result.seconds, result.client_cpu_seconds),
            note=note,
        )
        self.rows[key] = row
        say(
            f"{name}: {row.rate:,.1f} {unit}, "
            f"p50 {row.p50:.1f} ms, p95 {row.p95:.1f} ms, p99 {row.p99:.1f} ms"
            + (f", {row.errors} errors (see {target.log_path})" if row.errors else "")
            + (f", plan wrapped {row.wrapped} times" if row.wrapped else "")
        )
        return row

    async def measure_sync(self, api: server.Server, writer: PlanWriter, entries: int) -> None:
        """Sync through bench.syncload (see there why not wrk): each request a new patient's backlog."""
        config = self.config
        bodies = (
            (writer.tokens[p.user_id], {"entries": fill_ids(writer.sync_body(p, entries))})
            for p in itertools.cycle(writer.people.patients)
        )
        meter = CpuMeter(api.pid)
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        result = await syncload.run(
            api.url, bodies, connections=config.sync_connections, seconds=config.duration_seconds
        )
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        client = (client_after.ru_utime - client_before.ru_utime) + (
            client_after.ru_stime - client_before.ru_stime
        )
        row = Row(
            key="sync",
            name=f"POST /v1/sync, {entries} entries ({config.sync_connections} connections)",
            unit="entries/s",
            rate=result.entries_per_second,
            p50=result.percentile(50),
            p95=result.percentile(95),
            p99=result.percentile(99),
            requests=len(result.latencies_ms),
            errors=result.failed,
            cpu=meter.share(result.seconds, client),
        )
        self.rows["sync"] = row
        wait_idle(api.pid)
        say(f"{row.name}: {row.rate:,.1f} entries/s over {result.seconds:.0f} s, p50 {row.p50} ms")

    def profile_under(
        self, target: server.Server, plan: wrk.Plan, title: str, connections: int | None = None
    ) -> None:
        """py-spy on the server while wrk drives it with the plan (a run of its own, not measured)."""
        out = self.results / "profiles" / f"{plan.name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        seconds = self.config.profile_seconds
        recorder = profile.start_recording(target.pid, seconds, out)
        self._wrk(target, plan, seconds + 1, connections or self.config.connections)
        recorder.wait(timeout=60)
        if out.exists():
            self.profiles.append(profile.summarize(out).markdown(title))
            say(f"profile of {plan.name}: {out}")
        else:
            say(f"py-spy wrote no profile for {plan.name} (it needs root to attach)")

    # ---- servers -------------------------------------------------------------------------------

    def start_api(
        self, database: pg.BenchDatabase, *, worker: bool = False, worker_apart: bool = False
    ) -> server.Server:
        """`worker`: the delivery worker in the API process. `worker_apart`: none in it, but the
        settings a worker needs (for `start_worker` beside it)."""
        port = server.free_port()
        argv = [*pg.symptrack_command(self.config), "serve", "--host", "127.0.0.1", "--port", str(port)]
        if not worker:
            argv.append("--no-worker")
        env = self.server_env(database, worker=worker or worker_apart)
        name = "api-worker" if worker else "api-worker-apart" if worker_apart else "api"
        return server.start(name, argv, env, port, self.logs)

    def start_worker(
        self, database: pg.BenchDatabase, name: str = "worker", log_level: str | None = None
    ) -> server.Server:
        """`symptrack worker`, a process of its own, with the settings the API has with its worker."""
        argv = [*pg.symptrack_command(self.config), "worker"]
        env = self.server_env(database, worker=True)
        if log_level is not None:
            env["SYMPTRACK_LOG_LEVEL"] = log_level
        return server.spawn(name, argv, env, self.logs)

    async def baselines(self, database: pg.BenchDatabase, plan: wrk.Plan) -> None:
        for key, name, url in (
            ("floor", "floor: Starlette + asyncpg, POST dose", database.url),
            ("tutorial", "tutorial: sync FastAPI + SQLModel, POST dose", database.sync_url),
        ):
            port = server.free_port()
            env = {**os.environ, "BENCH_DATABASE_URL": url, "BENCH_POOL_SIZE": str(self.config.connections)}
            argv = [self.config.python, "-m", "bench.baselines.serve", key, "--port", str(port)]
            baseline = server.start(key, argv, env, port, self.logs)
            try:
                await self.scenario(key, name, baseline, plan, may_wrap=True)
            finally:
                baseline.stop()

    # ---- phases --------------------------------------------------------------------------------

    async def load_year(self, database: pg.BenchDatabase) -> Population:
        config = self.config
        with self.timed("load 1 year"):
            people = population.build(
                config.patients,
                config.patients_per_provider,
                config.long_days,
                datagen.password_hash(),
                doses_sent_later=[days.each() for days in DOSES_SENT_LATER],
            )
            await datagen.load_population(database.url, people)
            span = datagen.Span(1, config.short_days)
            rows = await datagen.load_history(database.url, people, span, f"history, {span.days} days")
            await pg.analyze(database)
        self.notes.append(
            f"Data: {config.patients:,} patients ({config.providers} providers); {config.short_days} days of "
            f"history = {rows:,} entries, loaded in {self.timings['load 1 year']} s"
        )
        return people

    async def load_more_years(self, database: pg.BenchDatabase, people: Population) -> None:
        config = self.config
        with self.timed("load years 2-3"):
            span = datagen.Span(config.short_days + 1, config.long_days)
            rows = await datagen.load_history(
                database.url, people, span, f"history, days {span.newest}-{span.oldest}"
            )
            await pg.analyze(database)
        self.notes.append(
            f"Data: {span.days} more days = {rows:,} more entries, "
            f"loaded in {self.timings['load years 2-3']} s "
            "while the API kept running"
        )

    async def explain(self, database: pg.BenchDatabase, people: Population, label: str) -> None:
        found = await explain.explain(database.url, people.patients[0].patient_id)
        self.plans.append(f"With {label}:\n\n{explain.markdown(found)}")

    def create_admin(self, database: pg.BenchDatabase) -> None:
        """Through the command line, as an operator would."""
        subprocess.run(
            [
                *pg.symptrack_command(self.config),
                "create-admin",
                "--email",
                ADMIN_EMAIL,
                "--password",
                population.PASSWORD,
                "--organization",
                population.ORGANIZATION_NAME,
            ],
            env=self.server_env(database),
            check=True,
            capture_output=True,
        )

    async def count_queries(
        self, database: pg.BenchDatabase, people: Population, tokens: dict[uuid.UUID, str]
    ) -> None:
        """Statements per request, on days no scenario writes to (50-55 days ago; the check-in's and the
        sync's, PROBE_DAYS, hold no history doses, as the scenarios' days)."""
        patient, provider = people.patients[0], people.providers[0]
        today = patient.today(people.created_at)

        def day(back: int) -> date:
            return today - timedelta(days=back)

        mine, theirs = tokens[patient.user_id], tokens[provider.user_id]
        summary = f"/v1/patients/{patient.patient_id}/summary?from={day(89)}&to={today}"
        probes = [
            querycount.Probe(
                "POST dose",
                "POST",
                "/v1/patients/me/doses",
                mine,
                [fill_ids(dose_body(patient, day(b))) for b in (50, 51)],
            ),
            querycount.Probe(
                "POST check-in",
                "POST",
                "/v1/patients/me/check-ins",
                mine,
                [fill_ids(check_in_body(patient, day(b))) for b in PROBE_DAYS.each()][:2],
            ),
            querycount.Probe(
                "POST sync, 5 entries (one day)",
                "POST",
                "/v1/sync",
                mine,
                [{"entries": fill_ids(sync_entries(patient, [day(b)], 5))} for b in PROBE_DAYS.each()][2:],
            ),
            querycount.Probe("GET me", "GET", "/v1/me", mine, [None, None]),
            querycount.Probe("GET summary (90 days)", "GET", summary, theirs, [None, None]),
            querycount.Probe(
                "GET report (90 days)", "GET", summary.replace("/summary?", "/report?"), theirs, [None, None]
            ),
            querycount.Probe("GET panel", "GET", "/v1/panel", theirs, [None, None]),
        ]
        for counted in await querycount.count(settings_from(self.server_env(database)), probes):
            self.query_counts.append(counted.markdown())
            say(f"{counted.name}: {len(counted.statements)} statements (status {counted.status})")

    async def scenario(
        self, key: str, name: str, target: server.Server, plan: wrk.Plan, **options: Any
    ) -> None:
        async with self.guard(key, name):
            self.measure(key, name, target, plan, **options)

    async def api_scenarios(self, api: server.Server, writer: PlanWriter, plans: dict[str, wrk.Plan]) -> None:
        config = self.config
        entries = min(config.sync_entries, 500)
        read = {"may_wrap": True}
        one = {"connections": 1, "note": "service time: no queueing", "may_wrap": True}
        with self.timed("API scenarios"):
            # What any request pays before its own work: the framework and middleware alone, then
            # the token check and one read (two statements).
            await self.scenario(
                "healthz", "GET /healthz (no database)", api, plans["healthz"], note="framework floor", **read
            )
            await self.scenario(
                "me", "GET /v1/me (token check + 1 read)", api, plans["me"], note="auth floor", **read
            )
            await self.scenario("doses", "POST dose", api, plans["doses"])
            await self.scenario(
                "check_ins", "POST check-in (3 doses, 2 symptoms, rating)", api, plans["check_ins"]
            )
            async with self.guard("sync", f"POST /v1/sync, {entries} entries"):
                await self.measure_sync(api, writer, entries)
            await self.scenario(
                "summary_1y",
                f"90-day summary, {history(config.short_days)} of history",
                api,
                plans["summaries"],
                **read,
            )
            # The printable page of the same window: its cost beside the JSON's (at most 2x, issue 18).
            await self.scenario(
                "report_1y",
                f"90-day report page, {history(config.short_days)} of history",
                api,
                plans["reports"],
                **read,
            )
            await self.scenario(
                "panel",
                f"panel, all {config.patients_per_provider} patients (limit={config.patients_per_provider})",
                api,
                plans["panel"],
                **read,
            )
            await self.scenario("panel_page", "panel, a page of 50", api, plans["panel_page"], **read)
            if config.single_connection_reads:
                await self.scenario(
                    "summary_1y_1c",
                    f"90-day summary, {history(config.short_days)}, 1 connection",
                    api,
                    plans["summaries"],
                    **one,
                )
                await self.scenario(
                    "report_1y_1c",
                    f"90-day report page, {history(config.short_days)}, 1 connection",
                    api,
                    plans["reports"],
                    **one,
                )
                await self.scenario("panel_1c", "panel, 1 connection", api, plans["panel"], **one)
        if config.profile:
            with self.timed("profiles"):
                self.profile_under(api, plans["doses"], "POST dose")
                self.profile_under(api, plans["check_ins"], "POST check-in")
                # Reads: two connections keep the process busy without a long queue to drain.
                self.profile_under(
                    api, plans["summaries"], f"90-day summary, {history(config.short_days)}", connections=2
                )
                self.profile_under(api, plans["panel"], "panel", connections=2)

    async def fair_share(self, api: server.Server, people: Population, tokens: dict[uuid.UUID, str]) -> None:
        """Issue 25, finding 3: another patient's 90-day summary (their own, one at a time), quiet and
        while one patient loops year-long reports, exports and summaries, 8 at a time."""
        config = self.config
        looper, prober = people.patients[0], people.patients[1]
        seconds = config.duration_seconds
        today = prober.today(people.created_at)
        probe_path = f"/v1/patients/me/summary?from={today - timedelta(days=89)}&to={today}"
        end = looper.today(people.created_at)
        year = f"from={end - timedelta(days=364)}&to={end}"
        mine = tokens[looper.user_id]
        base = f"/v1/patients/{looper.patient_id}"
        # A patient reads their own exports where the API lets them (issue 25, finding 7); else their
        # provider asks for them: then two callers loop, each within their own share.
        exporter = mine
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
            tried = await client.get(
                f"{base}/export.csv?from={end}&to={end}", headers={"Authorization": f"Bearer {mine}"}
            )
        if tried.status_code == 403:
            exporter = tokens[people.providers[looper.provider_index].user_id]
        heavy = [
            (f"{base}/report?{year}", mine),
            (f"{base}/export.csv?{year}", exporter),
            (f"{base}/summary?{year}", mine),
            (f"{base}/fhir?{year}", exporter),
        ]
        meter, started = CpuMeter(api.pid), time.perf_counter()
        result = await fairshare.run(
            api.url, probe_path, tokens[prober.user_id], heavy, seconds=seconds, warmup=config.warmup_seconds
        )
        wait_idle(api.pid)
        loaded, quiet = result.loaded, result.quiet
        looped = ", ".join(f"{kind}: {n}" for kind, n in sorted(result.looped.items()))
        row = Row(
            key="fair_share",
            name=f"90-day summary while one patient loops year-long reports, exports and summaries, "
            f"{fairshare.LOOPERS} at a time",
            unit="",
            p50=loaded.percentile(50),
            p95=loaded.percentile(95),
            p99=loaded.percentile(99),
            requests=len(loaded.latencies_ms),
            errors=loaded.failed + quiet.failed,
            cpu=meter.share(time.perf_counter() - started, 0),  # the quiet run's included
            note=f"quiet: p50 {report.ms(quiet.percentile(50))}, p95 {report.ms(quiet.percentile(95))}; "
            f"exports asked by {'the patient' if exporter == mine else 'their provider'}; "
            f"the loop's answers: {looped}",
        )
        quiet_p95 = quiet.percentile(95)
        if quiet_p95 is not None:
            row.extra["quiet_p95_ms"] = quiet_p95
        self.rows["fair_share"] = row
        say(f"{row.name}: p50 {report.ms(row.p50)}, p95 {report.ms(row.p95)} ({row.note})")

    async def three_years(self, api: server.Server, plans: dict[str, wrk.Plan]) -> None:
        read = {"may_wrap": True}
        await self.scenario(
            "summary_3y",
            f"90-day summary, {history(self.config.long_days)} of history",
            api,
            plans["summaries"],
            **read,
        )
        if self.config.single_connection_reads:
            await self.scenario(
                "summary_3y_1c",
                f"90-day summary, {history(self.config.long_days)}, 1 connection",
                api,
                plans["summaries"],
                connections=1,
                note="service time: no queueing",
                **read,
            )

    async def alert_latency(
        self, database: pg.BenchDatabase, people: Population, tokens: dict[str, str], dose_plan: wrk.Plan
    ) -> None:
        """Alerts with the worker in the API process: quiet, under dose load, to 12 endpoints of which
        2 bad; then under dose load with the worker in a process of its own. Each run has its own
        patients (one urgent flag per patient), taken from the back: the other scenarios start from
        the front."""
        config = self.config
        fan_out = config.alert_endpoints
        apart = config.alert_under_load and config.alert_worker_apart
        runs = 1 + config.alert_under_load + fan_out + apart
        # The run through a worker's kill: every patient for 3 a second over the run's duration.
        paced = math.ceil(alerts.PACED_RATE * config.duration_seconds) if config.alert_worker_killed else 0
        count = min(config.alerts, (len(people.patients) - 2 - paced) // runs)
        pool = iter(reversed(people.patients))

        def take(n: int) -> list[BenchPatient]:
            return list(itertools.islice(pool, n))

        first, steady = take(1), take(count)
        loaded = take(count) if config.alert_under_load else []
        fanned = take(count) if fan_out else []
        warm, loaded_apart = (take(1), take(count)) if apart else ([], [])
        killed = take(paced) if config.alert_worker_killed else []
        seconds = config.duration_seconds
        api = self.start_api(database, worker=True)
        receiver: Receiver | None = None
        try:
            admin = await alerts.sign_in(api.url, ADMIN_EMAIL, population.PASSWORD)
            receiver, endpoint_id = await alerts.subscribe(admin)
            # The worker starts with a pass of the periodic time rules over every patient; an alert sent
            # now waits for it. Shown apart: the worst case, not the steady state.
            result = await alerts.send_alerts(api.url, receiver, first, tokens, seconds=seconds)
            self._alert_row(
                "alert_first",
                "alert sent as the worker starts its periodic pass",
                result,
                note="worst case, shown apart",
            )
            result = await alerts.send_alerts(api.url, receiver, steady, tokens, seconds=seconds)
            self._alert_row("alerts", "alert: urgent check-in to verified webhook", result)
            if loaded:
                load = asyncio.to_thread(self._wrk, api, dose_plan, seconds, config.connections)
                result, background = await asyncio.gather(
                    alerts.send_alerts(api.url, receiver, loaded, tokens, seconds=seconds), load
                )
                self._alert_row(
                    "alerts_load",
                    f"alert while {config.connections} connections post doses",
                    result,
                    note=f"dose load meanwhile: {background.rate:,.0f} req/s",
                )
            if fanned:
                async with self.guard("alerts_endpoints", FAN_OUT_NAME):
                    try:
                        await self.alert_fan_out(api, admin, receiver, endpoint_id, fanned, tokens)
                    finally:
                        # Back to the one endpoint, for the run with the worker apart.
                        receiver.release()
                        await admin.enable_only(endpoint_id)
            self.peak_rss["API with worker"] = api.peak_rss_mb()
            if loaded_apart:
                api.stop()
                async with self.guard("alerts_load_apart", self._apart_name()):
                    await self.alert_worker_apart(database, receiver, warm, loaded_apart, tokens, dose_plan)
            if killed:
                api.stop()
                async with self.guard("alerts_worker_killed", KILLED_NAME):
                    await self.alert_worker_killed(database, admin, endpoint_id, killed, tokens)
            if receiver.refused:
                self.notes.append(
                    f"The receiver refused {receiver.refused} requests that failed verification."
                )
        finally:
            api.stop()
            if receiver is not None:
                receiver.stop()

    async def alert_fan_out(
        self,
        api: server.Server,
        admin: alerts.Admin,
        receiver: Receiver,
        endpoint_id: str,
        patients: list[BenchPatient],
        tokens: dict[str, str],
    ) -> None:
        """The organization's 12 endpoints (its first one disabled meanwhile), 2 of them bad: each
        alert's latency is until all 10 good ones verified it."""
        await admin.set_enabled([endpoint_id], False)
        fan = await alerts.fan_out(admin, receiver)
        result = await alerts.send_alerts(
            api.url, receiver, patients, tokens, seconds=self.config.duration_seconds, paths=fan.good_paths
        )
        p50, p99 = (report.ms(alerts.percentile(result.each_ms, p)) for p in (50, 99))
        note = (
            f"until all {len(fan.good_paths)} verified it; each good receipt: p50 {p50}, p99 {p99}; "
            f"sends to the slow one: {receiver.requests[fan.slow_path]}, "
            f"alerts tried on the unreachable one: {await admin.attempted(fan.unreachable_id)}"
        )
        self._alert_row("alerts_endpoints", FAN_OUT_NAME, result, note=note)

    def _apart_name(self) -> str:
        return f"alert while {self.config.connections} connections post doses, worker in its own process"

    async def alert_worker_apart(
        self,
        database: pg.BenchDatabase,
        receiver: Receiver,
        warm: list[BenchPatient],
        patients: list[BenchPatient],
        tokens: dict[str, str],
        dose_plan: wrk.Plan,
    ) -> None:
        """`symptrack serve --no-worker` and `symptrack worker` beside it: the same dose load, the same
        receiver. A first alert waits for the worker to be up and through its start pass, not measured."""
        seconds = self.config.duration_seconds
        api = self.start_api(database, worker_apart=True)
        worker = self.start_worker(database)

        def alive() -> bool:
            return worker.process.poll() is None

        try:
            first = await alerts.send_alerts(api.url, receiver, warm, tokens, seconds=seconds, alive=alive)
            if not first.latencies_ms or not alive():
                raise RuntimeError(f"the worker delivered no alert; see {worker.log_path}")
            worker_cpu = CpuMeter(worker.pid)
            load = asyncio.to_thread(self._wrk, api, dose_plan, seconds, self.config.connections)
            result, background = await asyncio.gather(
                alerts.send_alerts(api.url, receiver, patients, tokens, seconds=seconds, alive=alive), load
            )
            if not alive():
                raise RuntimeError(f"the worker exited; see {worker.log_path}")
            share = worker_cpu.share(background.seconds, 0)
            self._alert_row(
                "alerts_load_apart",
                self._apart_name(),
                result,
                note=f"dose load meanwhile: {background.rate:,.0f} req/s; worker CPU {share.server:.0f}%; "
                f"first alert, worker starting: {report.ms(first.percentile(50))}",
            )
            self.peak_rss["API, worker apart"] = api.peak_rss_mb()
            self.peak_rss["worker"] = worker.peak_rss_mb()
        finally:
            worker.stop()
            api.stop()

    async def alert_worker_killed(
        self,
        database: pg.BenchDatabase,
        admin: alerts.Admin,
        endpoint_id: str,
        patients: list[BenchPatient],
        tokens: dict[str, str],
    ) -> None:
        """`symptrack serve --no-worker` and two `symptrack worker`s; a receiver of its own that
        answers every webhook 2 s after verifying it, the organization's only endpoint meanwhile;
        urgent check-ins at 3 a second for the run's duration, and one worker killed (SIGKILL) once
        half of them are sent, its sends in flight at the receiver. Each alert is timed until its
        first verified receipt; one not verified within a minute is lost."""
        api = self.start_api(database, worker_apart=True)
        admin = alerts.Admin(api.url, admin.token)  # the same admin, through this API process
        # At info, whatever BENCH_LOG_LEVEL says: each worker's start is read from its log.
        workers = [self.start_worker(database, f"worker-{n}", log_level="info") for n in (1, 2)]
        receiver = Receiver()
        receiver.routes[DEFAULT_PATH].delay = alerts.PACED_ANSWER_SECONDS
        receiver.start()
        doomed, survivor = workers
        try:
            new_id, receiver.secret = await admin.register(receiver.url)
            await admin.enable_only(new_id)
            # Both workers up (their start pass done) before the clock starts: one alert, not measured.
            for worker in workers:
                await asyncio.to_thread(_wait_for_log, worker, b"worker started")
            warm = await alerts.send_alerts(api.url, receiver, patients[:1], tokens, seconds=60)
            if not warm.latencies_ms:
                raise RuntimeError(f"no worker delivered an alert; see {self.logs}")

            at_kill: list[int] = []

            async def kill() -> None:
                """Once the worker has a send at the receiver (within 10 s; else killed regardless)."""
                deadline = time.monotonic() + 10
                while not (sending := sending_ports(doomed.pid, receiver.port)):
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.005)
                doomed.process.send_signal(signal.SIGKILL)
                at_kill.append(len(sending))
                say(f"killed {doomed.name} (pid {doomed.pid}) with {len(sending)} sends at the receiver")

            result = await alerts.paced_alerts(
                api.url,
                receiver,
                patients[1:],
                tokens,
                rate=alerts.PACED_RATE,
                seconds=self.config.duration_seconds,
                midway=kill,
                alive=lambda: survivor.process.poll() is None,
            )
            if doomed.process.wait(10) != -signal.SIGKILL:
                raise RuntimeError(f"{doomed.name} was not killed; see {doomed.log_path}")
            # The killed worker's sends that were at the receiver go again once their leases run out
            # (they may be the last requests of all): waited for, a little longer than a lease.
            once = len(warm.latencies_ms) + len(result.latencies_ms)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if receiver.requests[DEFAULT_PATH] >= once + sum(at_kill):
                    break
                await asyncio.sleep(0.05)
            sent = len(result.latencies_ms) + result.lost
            self._alert_row(
                "alerts_worker_killed",
                KILLED_NAME,
                result,
                note=f"lost: {result.lost} of {sent}; the killed worker's sends at the receiver: "
                f"{sum(at_kill)}, sent again: {receiver.requests[DEFAULT_PATH] - once}",
            )
        finally:
            receiver.stop()
            for worker in workers:
                worker.stop()
            try:
                await admin.enable_only(endpoint_id)
            finally:
                api.stop()

    def _alert_row(self, key: str, name: str, result: alerts.AlertResult, note: str = "") -> None:
        answered = result.percentile(50, answered=True)
        split = f"check-in answered at p50 {answered:,.0f} ms" if answered is not None else ""
        row = Row(
            key=key,
            name=name,
            unit="",
            p50=result.percentile(50),
            p95=result.percentile(95),
            p99=result.percentile(99),
            requests=len(result.latencies_ms),
            errors=result.refused_requests + result.lost,
            note="; ".join(
                part for part in (note, split, f"alerts sent: {len(result.latencies_ms)}") if part
            ),
        )
        self.rows[key] = row
        say(f"{name}: p50 {row.p50} ms, p99 {row.p99} ms, {row.errors} lost or refused ({row.note})")

    # ---- the run -------------------------------------------------------------------------------

    async def run(self) -> None:
        config = self.config
        wrk.require_wrk()
        if config.profile and not config.only and profile.py_spy() is None:
            raise SystemExit("py-spy is not installed: pip install -e '.[bench]' (or BENCH_PROFILE=0)")
        self.results.mkdir(parents=True, exist_ok=True)
        plans_dir = self.results / "plans"
        info = machine.describe(await pg.server_version(config))
        database = await pg.create(config)
        say(f"database {database.name}")
        try:
            with self.timed("migrate"):
                pg.migrate(config, database, self.server_env(database))
            people = await self.load_year(database)
            self.create_admin(database)
            settings = settings_from(self.server_env(database))
            now = datetime.now(UTC)
            tokens = {u.user_id: mint(settings, u.user_id, u.family_id, now) for u in people.providers}
            tokens |= {p.user_id: mint(settings, p.user_id, p.family_id, now) for p in people.patients}
            writer = PlanWriter(plans_dir, people, tokens, people.created_at)
            if config.only == "fairshare":
                self.notes.append("BENCH_ONLY=fairshare: only the fair-share scenario ran")
                api = self.start_api(database)
                try:
                    with self.timed("fair share"):
                        async with self.guard(
                            "fair_share", "90-day summary while one patient loops heavy reads"
                        ):
                            await self.fair_share(api, people, tokens)
                finally:
                    api.stop()
            else:
                if config.only == "alerts":
                    self.notes.append("BENCH_ONLY=alerts: only the alert scenarios ran")
                    dose_plan = writer.doses("doses", DOSE_DAYS)
                else:
                    dose_plan = await self.all_but_alerts(database, people, tokens, writer)
                patient_tokens = {str(p.patient_id): tokens[p.user_id] for p in people.patients}
                with self.timed("alerts"):
                    async with self.guard("alerts", "alert: urgent check-in to verified webhook"):
                        await self.alert_latency(database, people, patient_tokens, dose_plan)
        finally:
            if config.keep_database:
                say(f"kept database {database.name}")
            else:
                await pg.drop(config, database)
            for plan in plans_dir.glob("*.plan"):
                plan.unlink()
        self.finish(info)

    async def all_but_alerts(
        self, database: pg.BenchDatabase, people: Population, tokens: dict[uuid.UUID, str], writer: PlanWriter
    ) -> wrk.Plan:
        """The evidence, the baselines and the API scenarios; returns the dose plan (the alerts use it)."""
        config = self.config
        settings = settings_from(self.server_env(database))
        await self.count_queries(database, people, tokens)
        await self.explain(database, people, f"{config.short_days} days of history")
        costs = await statement_cost.measure(settings, database.url, people.patients[0].user_id)
        self.statement_costs = statement_cost.markdown(costs)
        with self.timed("baselines"):
            await self.baselines(database, writer.doses("baseline_doses", BASELINE_DAYS, path_by_id=True))
        plans = {
            "doses": writer.doses("doses", DOSE_DAYS),
            "check_ins": writer.check_ins(CHECK_IN_DAYS),
            "summaries": writer.summaries("summaries"),
            "reports": writer.summaries("reports", resource="report"),
            "panel": writer.panel(config.patients_per_provider),
            "panel_page": writer.panel(50),
            "healthz": writer.gets("healthz", "/healthz", signed_in=False),
            "me": writer.gets("me", "/v1/me"),
        }
        api = self.start_api(database)
        try:
            await self.api_scenarios(api, writer, plans)
            async with self.guard("fair_share", "90-day summary while one patient loops heavy reads"):
                await self.fair_share(api, people, tokens)
            await self.load_more_years(database, people)
            await self.explain(database, people, f"{config.long_days} days of history")
            await self.three_years(api, plans)
            self.peak_rss["API"] = api.peak_rss_mb()
        finally:
            api.stop()
        return plans["doses"]

    def finish(self, info: dict[str, str]) -> None:
        if self.peak_rss:
            peak_name, peak = max(self.peak_rss.items(), key=lambda item: item[1])
            self.rows["rss"] = Row(key="rss", name=f"peak RSS, {peak_name} (VmHWM)", unit="")
            self.rows["rss"].extra["peak_rss_mb"] = peak
            sizes = ", ".join(f"{name} {mb:.0f} MB" for name, mb in self.peak_rss.items())
            self.notes.append(f"Peak RSS (VmHWM) of each API process: {sizes}")
        order = [
            "floor",
            "tutorial",
            "healthz",
            "me",
            "doses",
            "check_ins",
            "sync",
            "summary_1y",
            "summary_3y",
            "summary_1y_1c",
            "summary_3y_1c",
            "report_1y",
            "report_1y_1c",
            "panel",
            "panel_page",
            "panel_1c",
            "fair_share",
            "alerts",
            "alerts_load",
            "alerts_load_apart",
            "alerts_endpoints",
            "alerts_worker_killed",
            "alert_first",
            "rss",
        ]
        self.rows = {key: self.rows[key] for key in order if key in self.rows}
        report.evaluate(self.rows)
        self.write(info)

    def write(self, info: dict[str, str]) -> None:
        table, cpu = report.table(self.rows), report.cpu_table(self.rows)
        settings = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_"))
        timings = ", ".join(f"{name} {seconds} s" for name, seconds in self.timings.items())
        cores = os.cpu_count() or 1
        sections = [
            "## Latest run",
            f"Command: `{settings + ' ' if settings else ''}make bench`",
            machine.markdown(info),
            table,
            "CPU during each measured run, in % of one core "
            f"(the machine has {cores} cores, {100 * cores}%):",
            cpu,
            "\n".join(f"- {note}" for note in self.notes),
            f"Timings: {timings}.",
            "### Statements per request",
            "\n".join(self.query_counts),
            "### What one statement costs, by layer",
            self.statement_costs,
            "### Query plans",
            "\n\n".join(self.plans),
            "### Profiles",
            "\n\n".join(self.profiles) or "(not profiled: BENCH_PROFILE=0)",
        ]
        (self.results / "latest.md").write_text("\n\n".join(sections) + "\n")
        payload = {
            "machine": info,
            "rows": report.as_json(self.rows),
            "timings": self.timings,
            "notes": self.notes,
        }
        (self.results / "latest.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"\nsymptrack benchmarks, {info['date']}, {info['cores']} cores, {info['cpu']}\n")
        print(table)
        print(f"\n{cpu}\n")
        print("\n".join(f"- {note}" for note in self.notes))
        print(f"\nTimings: {timings}.\nFull report: {self.results / 'latest.md'}")


def main() -> None:
    started = time.perf_counter()
    asyncio.run(Bench(BenchConfig.from_env()).run())
    say(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
