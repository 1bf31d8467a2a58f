"""Every size, duration and address a bench run uses, from BENCH_* environment variables.

The defaults are the issue's sizes; smaller values make a quick run (`BENCH_PATIENTS=200 make bench`).
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _flag(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in ("1", "true", "yes", "on")


ONLY = ("", "alerts", "fairshare")


def _only(value: str) -> str:
    value = value.strip().lower()
    if value not in ONLY:
        raise SystemExit(f"BENCH_ONLY={value!r}: expected one of {', '.join(repr(v) for v in ONLY)}")
    return value


@dataclass(frozen=True)
class BenchConfig:
    # The server everything runs against; the run creates and drops its own database there.
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432"
    database_prefix: str = "symptrack_bench_"
    # Data: patients with `short_days` of history, later extended to `long_days` (1 and 3 years).
    patients: int = 2000
    patients_per_provider: int = 500
    short_days: int = 365
    long_days: int = 3 * 365
    # Load: one uvicorn process, `connections` keep-alive connections from wrk.
    connections: int = 32
    wrk_threads: int = 2
    warmup_seconds: float = 5.0
    duration_seconds: float = 20.0
    sync_entries: int = 500
    # A 500-entry sync takes seconds: at 32 connections none would finish within the run.
    sync_connections: int = 4
    # Alerts go one at a time, each after the last one arrived, for at most `duration_seconds`.
    alerts: int = 200
    alert_under_load: bool = True
    # 12 endpoints of which 2 bad (unreachable, slow): until all 10 good ones have the alert.
    alert_endpoints: bool = True
    # The loaded alert run again with the delivery worker in a process of its own.
    alert_worker_apart: bool = True
    # Urgent check-ins at 3 a second to a receiver answering in 2 s, two workers, one killed midway.
    alert_worker_killed: bool = True
    # "alerts": only what the alert runs need (data, then the alert scenarios); "fairshare": only the
    # data and the fair-share scenario; "" runs everything.
    only: str = ""
    # Also measure the summary and panel at one connection: service time without queueing.
    single_connection_reads: bool = True
    profile: bool = True
    profile_seconds: float = 10.0
    keep_database: bool = False
    results_dir: Path = BENCH_DIR / "results"
    python: str = sys.executable
    # Signs the bench's access tokens; 48 characters, as production requires 32 or more.
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(36))
    # Encrypts webhook secrets at rest (a Fernet key: 32 random bytes, url-safe base64).
    webhook_secret_key: str = field(
        default_factory=lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    )

    @classmethod
    def from_env(cls) -> BenchConfig:
        years_short = _float("BENCH_YEARS_SHORT", 1)
        years_long = _float("BENCH_YEARS_LONG", 3)
        return cls(
            postgres_url=os.environ.get("BENCH_POSTGRES_URL", cls.postgres_url),
            patients=_int("BENCH_PATIENTS", cls.patients),
            patients_per_provider=_int("BENCH_PATIENTS_PER_PROVIDER", cls.patients_per_provider),
            short_days=round(365 * years_short),
            long_days=round(365 * years_long),
            connections=_int("BENCH_CONNECTIONS", cls.connections),
            wrk_threads=_int("BENCH_WRK_THREADS", cls.wrk_threads),
            warmup_seconds=_float("BENCH_WARMUP", cls.warmup_seconds),
            duration_seconds=_float("BENCH_DURATION", cls.duration_seconds),
            sync_entries=_int("BENCH_SYNC_ENTRIES", cls.sync_entries),
            sync_connections=_int("BENCH_SYNC_CONNECTIONS", cls.sync_connections),
            alerts=_int("BENCH_ALERTS", cls.alerts),
            alert_under_load=_flag("BENCH_ALERT_UNDER_LOAD", cls.alert_under_load),
            alert_endpoints=_flag("BENCH_ALERT_ENDPOINTS", cls.alert_endpoints),
            alert_worker_apart=_flag("BENCH_ALERT_WORKER_APART", cls.alert_worker_apart),
            alert_worker_killed=_flag("BENCH_ALERT_WORKER_KILLED", cls.alert_worker_killed),
            only=_only(os.environ.get("BENCH_ONLY", cls.only)),
            single_connection_reads=_flag("BENCH_SINGLE_CONNECTION_READS", cls.single_connection_reads),
            profile=_flag("BENCH_PROFILE", cls.profile),
            profile_seconds=_float("BENCH_PROFILE_SECONDS", cls.profile_seconds),
            keep_database=_flag("BENCH_KEEP_DB", cls.keep_database),
            results_dir=Path(os.environ.get("BENCH_RESULTS_DIR", str(cls.results_dir))),
        )

    @property
    def providers(self) -> int:
        return max(1, -(-self.patients // self.patients_per_provider))
