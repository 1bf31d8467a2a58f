"""Prometheus metrics: this process's request counters, and gauges every process reads alike."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SessionDep
from api.observability import REGISTRY
from services.platform.metrics import read_gauges

router = APIRouter(tags=["operations"])


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(session: SessionDep) -> Response:
    gauges = await read_gauges(session)
    lines = [
        "# HELP symptrack_flags Flags by rule, severity and status.",
        "# TYPE symptrack_flags gauge",
        *(
            f'symptrack_flags{{rule="{_label(r)}",severity="{_label(s)}",status="{_label(st)}"}} {c}'
            for r, s, st, c in gauges.flags
        ),
        "# HELP symptrack_webhook_deliveries Webhook deliveries by outcome.",
        "# TYPE symptrack_webhook_deliveries gauge",
        *(f'symptrack_webhook_deliveries{{status="{_label(s)}"}} {c}' for s, c in gauges.deliveries),
        "# HELP symptrack_outbox_lag_seconds Age of the oldest due webhook delivery not yet sent.",
        "# TYPE symptrack_outbox_lag_seconds gauge",
        f"symptrack_outbox_lag_seconds {gauges.outbox_lag_seconds:.3f}",
    ]
    body = generate_latest(REGISTRY) + ("\n".join(lines) + "\n").encode()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
