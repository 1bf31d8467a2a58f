"""Prometheus metrics: this process's request counters, and gauges every process reads alike."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import SessionDep, SettingsDep
from api.errors import problem_responses
from api.observability import REGISTRY
from services.errors import Unauthorized
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
    # This process: requests (REGISTRY), resources and its worker's jobs and sends, its pool.
    body = generate_latest(REGISTRY) + generate_latest(PROCESS_REGISTRY) + pool
    body += ("\n".join(lines) + "\n").encode()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
