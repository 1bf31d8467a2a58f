"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api.deps import EngineDep, SettingsDep
from services.platform.health import Readiness, check_readiness

router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_SECONDS = 5.0


class Health(BaseModel):
    """The process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class ReadinessAnswer(BaseModel):
    """Whether this process can serve: each check's result."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}},
                {
                    "status": "unavailable",
                    "checks": {"database": "ok", "migrations": "ok", "redis": "unreachable"},
                },
                {"status": "unavailable", "checks": {"database": "timeout", "migrations": "unknown"}},
                {
                    "status": "unavailable",
                    "checks": {"database": "ok", "migrations": "ok", "shutdown": "draining"},
                },
            ]
        }
    )

    status: str
    checks: dict[str, str]


@router.get("/healthz", summary="The process is alive", response_model=Health)
async def healthz() -> Health:
    """Answers 200 while the process runs; it reads nothing. For liveness probes."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The database is reachable and migrated to the head revision",
    response_model=ReadinessAnswer,
    responses={503: {"model": ReadinessAnswer, "description": "Not ready"}},
)
async def readyz(request: Request, engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    """200 when the database answers and its schema is at the latest migration, and Redis answers
    when one is configured (`redis` is then among the checks), else 503 with the failing check;
    503 with `"shutdown": "draining"` once the process was asked to stop (it still serves for a
    grace period). For readiness probes and load balancers."""
    counters = request.app.state.counters
    try:
        readiness = await asyncio.wait_for(
            check_readiness(engine, settings, counters), READINESS_TIMEOUT_SECONDS
        )
    except TimeoutError:
        readiness = Readiness(False, {"database": "timeout", "migrations": "unknown"})
        if settings.redis_url:
            readiness.checks["redis"] = "unknown"
    if request.app.state.drain.draining:  # SIGTERM: the balancer must stop sending here (api/drain.py)
        readiness = Readiness(False, {**readiness.checks, "shutdown": "draining"})
    body = ReadinessAnswer(status="ok" if readiness.ready else "unavailable", checks=readiness.checks)
    return JSONResponse(body.model_dump(), status_code=200 if readiness.ready else 503)
