"""Prometheus metrics: this process's request counters, and gauges every process reads alike."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import SessionDep, SettingsDep
from api.errors import problem_responses
from api.observability import REGISTRY
from services.errors import Unauthorized
from services.platform.counters import RedisCounters
from services.platform.metrics import read_gauges
from services.platform.pool_metrics import PoolCollector
from services.platform.process_metrics import PROCESS_REGISTRY

router = APIRouter(tags=["operations"])

# A request a proxy passed on comes from the proxy's address, often loopback: not a local client.
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
METRICS_ACCESS = (
    "Prometheus text. The service-wide flag and delivery counts are not public: when "
    "`SYMPTRACK_METRICS_TOKEN` is set, send it as `Authorization: Bearer <token>` (else 401); when "
    "it is not, only loopback clients (127.0.0.0/8, ::1) not behind a proxy are answered (others: 404)."
)


def _is_loopback(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def metrics_access(request: Request, settings: SettingsDep) -> None:
    token = settings.metrics_token
    if token is not None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        # Constant time: the comparison must not tell how much of a guess was right.
        matches = hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())
        if scheme.lower() != "bearer" or not matches:
            raise Unauthorized("Send the metrics token as a bearer token.")
        return
    proxied = any(name in request.headers for name in _FORWARDING_HEADERS)
    if proxied or not _is_loopback(request.client.host if request.client else None):
        raise StarletteHTTPException(404)  # answered as if there were no such route


def _pool_registry(request: Request) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PoolCollector(request.app.state.engine.sync_engine.pool))
    return registry


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


@router.get(
    "/metrics",
    summary="Prometheus metrics (metrics token, or loopback clients only)",
    description=METRICS_ACCESS,
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **problem_responses(401, 404),
    },
    dependencies=[Depends(metrics_access)],
)
async def metrics(request: Request, session: SessionDep) -> Response:
    # Before this scrape's own statements check a connection out: the pool as the requests left it.
    pool = generate_latest(_pool_registry(request))
    gauges = await read_gauges(session)
    callers = getattr(request.app.state, "caller_cache", None)
    lines = [
        "# HELP symptrack_auth_cache_invalidations_total Session revocations and user changes heard.",
        "# TYPE symptrack_auth_cache_invalidations_total counter",
        # `is not None`: an empty cache has len() 0, and would read as no cache at all.
        f"symptrack_auth_cache_invalidations_total {0 if callers is None else callers.invalidations_heard}",
        "# HELP symptrack_bulk_writes_waiting Doses and sync batches waiting for a slot in this process.",
        "# TYPE symptrack_bulk_writes_waiting gauge",
        f"symptrack_bulk_writes_waiting {request.app.state.bulk_slots.waiting}",
        "# HELP symptrack_flags Open and acknowledged flags by rule, severity, status (at most 10000 each).",
        "# TYPE symptrack_flags gauge",
        *(
            f'symptrack_flags{{rule="{_label(r)}",severity="{_label(s)}",status="{_label(st)}"}} {c}'
            for r, s, st, c in gauges.flags
        ),
        "# HELP symptrack_webhook_deliveries Deliveries pending, failed or dead (at most 10000 each).",
        "# TYPE symptrack_webhook_deliveries gauge",
        *(f'symptrack_webhook_deliveries{{status="{_label(s)}"}} {c}' for s, c in gauges.deliveries),
        "# HELP symptrack_outbox_lag_seconds Age of the oldest due webhook delivery not yet sent.",
        "# TYPE symptrack_outbox_lag_seconds gauge",
        f"symptrack_outbox_lag_seconds {gauges.outbox_lag_seconds:.3f}",
    ]
    lines += _dependency_lines(request.app.state)
    # This process: requests (REGISTRY), resources and its worker's jobs and sends, its pool.
    body = generate_latest(REGISTRY) + generate_latest(PROCESS_REGISTRY) + pool
    body += ("\n".join(lines) + "\n").encode()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _dependency_lines(state: Any) -> list[str]:
    """Whether this process reaches what it depends on, 1 or 0: Redis (when configured: sign-ins
    answer 503 without it), and on PostgreSQL each LISTEN connection (listen_auth: revocations from
    other processes, callers are not cached without it; listen_outbox: the in-process worker's
    wake-up, it polls without it). An alert on any 0 for more than a minute is worth setting."""
    states: dict[str, bool] = {}
    counters = getattr(state, "counters", None)
    if isinstance(counters, RedisCounters):
        states["redis"] = counters.available
    callers = getattr(state, "caller_cache", None)
    if callers is not None and callers.listener is not None:
        states["listen_auth"] = bool(callers.listener.up)
    worker = getattr(state, "worker", None)
    if worker is not None and worker.listener is not None:
        states["listen_outbox"] = bool(worker.listener.up)
    return [
        "# HELP symptrack_dependency_up Whether this process reaches a dependency (1) or not (0).",
        "# TYPE symptrack_dependency_up gauge",
        *(f'symptrack_dependency_up{{dependency="{name}"}} {int(up)}' for name, up in states.items()),
    ]
