"""The floor for a write: raw Starlette and an asyncpg pool, one INSERT of a dose row per request.

No auth, no validation beyond parsing, no rules, no audit: the least any Python web stack on this
machine can do to store the same row in the same table. Our API's dose route is measured against it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

INSERT = """
INSERT INTO dose (id, patient_id, local_date, content_hash, created_at, taken_at, medication, dose_mg, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    size = int(os.environ.get("BENCH_POOL_SIZE", "32"))
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DATABASE_URL"], min_size=size, max_size=size)
    try:
        yield
    finally:
        await app.state.pool.close()


async def create_dose(request: Request) -> Response:
    body = json.loads(await request.body())
    dose_id = uuid.UUID(body["id"])
    taken_at = datetime.fromisoformat(body["taken_at"])
    await request.app.state.pool.execute(
        INSERT,
        dose_id,
        uuid.UUID(request.path_params["patient_id"]),
        taken_at.date(),
        "floor",
        datetime.now(UTC),
        taken_at,
        body.get("medication") or "gabapentin",
        float(body["dose_mg"]),
        body.get("status", "taken"),
    )
    return JSONResponse({"id": str(dose_id)}, status_code=201)


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/patients/{patient_id}/doses", create_dose, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
