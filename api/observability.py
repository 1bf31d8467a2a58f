"""Request ids, structured JSON logs, and request metrics.

Log lines carry ids and route templates, never names, emails, notes or tokens: a request's path is
logged as its route template ("/v1/patients/{patient_id}"), and nothing logs bodies or headers.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.platform.tracebacks import exception_name, safe_traceback

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("symptrack.access")

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "symptrack_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "symptrack_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        for key in ("method", "route", "status", "duration_ms"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        for key in ("exc_type", "traceback"):  # set by services.platform.tracebacks.log_exception
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info and record.exc_info[1] is not None:
            # Other libraries' exc_info (uvicorn's, the pool's): by type only, never the messages.
            line["exc_type"] = exception_name(record.exc_info[1])
            line["traceback"] = safe_traceback(record.exc_info[1])
        return str(json.dumps(line, default=str))


# Loggers that would write SQL with its parameters (patient data), raw paths with queries, or request
# URLs: capped at WARNING whatever level the operator asks for. Ours logs route templates instead.
CHATTY_LOGGERS = (
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    # SQLAlchemy names a pool's logger after its class: our metered pool logs as its module.
    "services.platform.pool_metrics.MeteredPool",
    "aiosqlite",
    "asyncpg",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "hpack",
    "multipart",
    # Alembic's plugin set-up, logged at INFO before every `symptrack migrate`.
    "alembic.runtime.plugins",
)


def quiet_chatty_loggers() -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_chatty_loggers()
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


UNMATCHED = "unmatched"
# A server takes any token as a method: a label holds the standard ones, any other is "OTHER".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def route_template(scope: Scope) -> str:
    """The matched route's own path template ("/v1/patients/{patient_id}/doses/{entry_id}"), taken from
    the route object the router chose, never rebuilt from the path: a label or an audit action can only
    be one of the app's routes, whatever a caller puts in a path. Unmatched requests share one label.

    Our routers carry their prefixes themselves and are included without one, so a route's
    `path_format` is its whole path (tests/test_bounded_labels.py holds every route to that)."""
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) and template else UNMATCHED


class ObservabilityMiddleware:
    """Gives each request an id (kept from X-Request-ID when sane), times it, counts it, logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = method_label(scope["method"])
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)
