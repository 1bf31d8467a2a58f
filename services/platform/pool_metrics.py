"""The database pool of this process, as metrics: connections in use, idle, and checkouts waiting.

SQLAlchemy's pool tells how many connections are checked out and idle, but not who waits for one:
`MeteredPool` counts the checkouts that found no idle connection (waiting for one to come back, or
for a new one to open) while they wait, and those that gave up at the pool timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, QueuePool


class MeteredPool(AsyncAdaptedQueuePool):
    # Class defaults: `recreate()` (after a disconnect) builds a new pool with the same arguments.
    waiting = 0
    timeouts = 0

    def connect(self) -> Any:
        if self.checkedin() > 0:  # an idle connection is there: no wait
            return super().connect()
        self.waiting += 1
        try:
            return super().connect()
        except PoolTimeout:
            self.timeouts += 1
            raise
        finally:
            self.waiting -= 1


class PoolCollector(Collector):
    """This process's pool at the moment of the scrape. Per process: scrape each process."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        pool = self.pool
        if not isinstance(pool, QueuePool):  # SQLite in memory and the like: nothing to count
            return
        connections = GaugeMetricFamily(
            "symptrack_db_pool_connections",
            "Database connections of this process's pool: in use (checked out) or idle in the pool.",
            labels=["state"],
        )
        connections.add_metric(["in_use"], pool.checkedout())
        connections.add_metric(["idle"], pool.checkedin())
        yield connections
        yield GaugeMetricFamily(
            "symptrack_db_pool_size",
            "Connections the pool keeps open (SYMPTRACK_DB_POOL_SIZE); more open as overflow.",
            value=pool.size(),
        )
        yield GaugeMetricFamily(
            "symptrack_db_pool_overflow",
            "Connections open beyond the pool size (at most SYMPTRACK_DB_MAX_OVERFLOW).",
            value=max(0, pool.overflow()),  # the pool counts from -size
        )
        waiting = pool.waiting if isinstance(pool, MeteredPool) else 0
        yield GaugeMetricFamily(
            "symptrack_db_pool_waiting",
            "Checkouts in this process waiting for a connection (none idle: one to come back or open).",
            value=waiting,
        )
        timeouts = pool.timeouts if isinstance(pool, MeteredPool) else 0
        yield CounterMetricFamily(
            "symptrack_db_pool_timeouts",
            "Checkouts in this process that gave up waiting for a connection (the pool timeout).",
            value=timeouts,
        )
