"""The app factory: settings in, a FastAPI app out, with its engine opened and closed by the lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response

from api.docs import install_docs
from api.drain import ClosingWhileDraining, Drain, draining_on_signals
from api.errors import UnhandledErrorMiddleware, install_problem_handlers, problem
from api.fair_share import FairShareGate, Slots
from api.limits import BodyLimitMiddleware, SecurityHeadersMiddleware
from api.observability import ObservabilityMiddleware, configure_logging, quiet_chatty_loggers
from api.openapi import install_openapi
from api.rate_limit import RateLimitMiddleware
from api.routes import (
    audit,
    auth,
    catalog,
    entries,
    flags,
    health,
    me,
    metrics,
    patients,
    providers,
    regimens,
    summaries,
    sync,
    users,
    webhooks,
)
from services.accounts import caller_cache
from services.database import create_engine, create_session_factory
from services.jobs import all_jobs
from services.platform.counters import MemoryCounters, RedisCounters, redis_client
from services.platform.worker import Worker
from services.settings import Settings, get_settings

DESCRIPTION = """\
symptrack records what patients taking gabapentin for anxiety take and feel, grades their side effects,
flags serious reactions for their care team and alerts the clinic over signed webhooks.

Every error answer is RFC 9457 `application/problem+json`.
"""


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as problem+json like every other 4xx
    (its own answer is a bare text/plain 400). The detail says what was refused (origin, method,
    headers), never echoing what was sent."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer
        refused = bytes(answer.body).decode().removeprefix("Disallowed CORS ").strip()
        refusal = problem(400, f"Cross-origin request refused: {refused} not allowed.", code="cors-refused")
        if vary := answer.headers.get("vary"):
            refusal.headers["vary"] = vary
        return refusal


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool = False,
    freeze_heap: bool = False,
    drain_on_signals: bool = False,
) -> FastAPI:
    """`freeze_heap`: a served process (`symptrack serve`) moves what start-up made (modules, models,
    the FHIR and chart libraries) out of the garbage collector's reach once started: a full collection
    then looks at what requests made only, and holds the event loop well under a millisecond where it
    held it ~130 ms at a time while heavy reads ran (every request waited). Not for the tests: what
    is frozen is never collected, and they make many apps in one process.

    `drain_on_signals`: a served process drains on SIGTERM (api/drain.py); its lifespan takes the
    signals from uvicorn while it runs. Not for the tests, which run apps in pytest's main thread."""
    settings = settings or get_settings()
    quiet_chatty_loggers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.redis = redis_client(settings) if settings.redis_url else None
        # Rate limits and sign-in throttling: shared through Redis when configured, else this process's.
        app.state.counters = (
            RedisCounters(app.state.redis, settings.redis_key_prefix) if app.state.redis else MemoryCounters()
        )
        app.state.session_factory = create_session_factory(engine)
        # Who a token is, kept a few seconds; revocations reach it from every process (caller_cache.py).
        callers = caller_cache.serving(engine, settings.auth_cache_seconds)
        app.state.caller_cache = await callers.__aenter__()
        worker = Worker(app.state.session_factory, settings, all_jobs()) if run_worker else None
        app.state.worker = worker
        worker_task = asyncio.create_task(worker.run(), name="worker") if worker else None
        if freeze_heap:
            gc.collect()
            gc.freeze()
        signals = draining_on_signals(app.state.drain, settings.shutdown_grace_seconds)
        try:
            with signals if drain_on_signals else nullcontext():
                yield
        finally:
            if worker and worker_task:
                # Let the round in flight finish, so nothing is left half-sent.
                worker.stop()
                await worker_task
            await callers.__aexit__(None, None, None)
            await engine.dispose()
            if app.state.redis is not None:
                await app.state.redis.aclose()

    app = FastAPI(
        title="symptrack",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api.docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.drain = Drain()
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Each one added wraps the ones before it: the last is outermost (ids and timing see everything).
    # Innermost, the fair shares (bulk writes' and heavy reads' slots): what a limit refused never
    # takes one, and a request waiting for one holds no database connection yet.
    wait = settings.fair_share_wait_seconds
    app.state.bulk_slots = Slots(settings.bulk_write_slots, settings.bulk_write_slots_per_caller, wait)
    app.state.heavy_slots = Slots(settings.heavy_read_slots, settings.heavy_read_slots_per_caller, wait)
    app.add_middleware(
        FairShareGate, bulk=app.state.bulk_slots, heavy=app.state.heavy_slots, settings=settings
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RateLimitMiddleware)
    # Inside the request id and access log, outside everything that could raise.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(ObservabilityMiddleware)
    # Outermost: every answer of a draining process closes its connection, refusals included.
    app.add_middleware(ClosingWhileDraining, drain=app.state.drain)
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(me.router)
    app.include_router(providers.router)
    app.include_router(users.router)
    app.include_router(patients.router)
    # Regimens, entries, flags and summaries add routes to the patient router (imported above).
    assert regimens.router is entries.router is patients.patient_router
    app.include_router(patients.patient_router)
    app.include_router(sync.router)
    app.include_router(flags.router)
    app.include_router(summaries.router)
    app.include_router(audit.router)
    app.include_router(webhooks.router)
    app.include_router(webhooks.deliveries_router)
    app.include_router(catalog.router)
    install_openapi(app)
    install_docs(app)
    return app


def create_app_from_env() -> FastAPI:
    """The app of one of several processes (`symptrack serve --workers N`): settings from the
    environment, and no delivery worker (`symptrack worker` runs it beside them)."""
    settings = get_settings()
    configure_logging(settings.log_level)  # each process is started afresh by uvicorn
    return create_app(settings, freeze_heap=True, drain_on_signals=True)
