"""What this process does besides answering requests, as metrics: its resources and its worker.

Kept in the process that does the work: `symptrack serve` shows them in `/metrics` (its worker runs
in-process); a `symptrack worker` alone serves them with `--metrics-port` (`serve_worker_metrics`).
Labels are bounded: a job's registered name, an attempt's outcome class (`ATTEMPT_OUTCOMES`).
"""

from __future__ import annotations

from collections.abc import Iterable
from threading import Thread
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.pool import Pool

from services.platform.pool_metrics import PoolCollector

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
# process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds, process_max_fds,
# process_start_time_seconds, process_virtual_memory_bytes (from /proc: Linux only, else nothing).
ProcessCollector(registry=PROCESS_REGISTRY)

# How a webhook attempt ended: sent and answered 2xx or not; not answered (timeout, connection
# failure); refused before sending (an unsafe or malformed URL); not sent (no key reads its secret,
# anything else unexpected).
ATTEMPT_OUTCOMES = ("succeeded", "non_2xx", "timeout", "connection", "refused", "not_sent")
WEBHOOK_ATTEMPTS = Counter(
    "symptrack_webhook_attempts_total",
    "Webhook delivery attempts this process made, by outcome: " + ", ".join(ATTEMPT_OUTCOMES) + ".",
    ["outcome"],
    registry=PROCESS_REGISTRY,
)
WEBHOOK_SEND_SECONDS = Histogram(
    "symptrack_webhook_send_seconds",
    "Time from a webhook send's start to its answer or its failure, for sends that went out.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
    registry=PROCESS_REGISTRY,
)
JOB_ROUND_SECONDS = Histogram(
    "symptrack_job_round_seconds",
    "Duration of each round of a worker job in this process (time_rules: one pass over every patient).",
    ["job"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
    registry=PROCESS_REGISTRY,
)
JOB_FAILURES = Counter(
    "symptrack_job_failures_total",
    "Worker job rounds in this process that ended in an error (the job runs again at its interval).",
    ["job"],
    registry=PROCESS_REGISTRY,
)


class _Together(Collector):
    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


class _Listening(Protocol):
    up: bool


class _Listens(Protocol):
    listener: _Listening | None


class WorkerListenCollector(Collector):
    """Whether a worker's LISTEN connection is up (PostgreSQL): without it the worker only polls, and
    urgent alerts leave at the next poll instead of at once. The same gauge `serve` shows in /metrics."""

    def __init__(self, worker: _Listens) -> None:
        self.worker = worker

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "symptrack_dependency_up",
            "Whether this process reaches a dependency (1) or not (0).",
            labels=["dependency"],
        )
        if (listener := self.worker.listener) is not None:
            gauge.add_metric(["listen_outbox"], int(bool(listener.up)))
        yield gauge


def serve_worker_metrics(host: str, port: int, pool: Pool, worker: _Listens) -> tuple[WSGIServer, Thread]:
    """Prometheus text for a `symptrack worker`, which has no HTTP server of its own: this process's
    resources, its jobs and sends, its pool and its LISTEN connection, at http://host:port/metrics,
    from a thread."""
    collectors = [PROCESS_REGISTRY, PoolCollector(pool), WorkerListenCollector(worker)]
    return start_http_server(port, addr=host, registry=_Together(collectors))
