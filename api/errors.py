"""RFC 9457 problem+json for every error the app can answer, mapped in this one place."""

from __future__ import annotations

import logging
import socket
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import API_CSP, SECURITY_HEADERS, TrackingSend
from services.errors import DomainError, TooManyRequests, ValidationFailed, status_title
from services.platform.tracebacks import log_exception

logger = logging.getLogger("symptrack.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemFieldError(BaseModel):
    """One field that was refused: where (`loc`, e.g. ["body", "dose_mg"]) and why."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"loc": ["body", "dose_mg"], "msg": "Input should be less than or equal to 3600"}]
        }
    )

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """The body of every error answer (RFC 9457 problem details)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:symptrack:problem:validation-error",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "body.dose_mg: Input should be less than or equal to 3600",
                    "errors": [
                        {"loc": ["body", "dose_mg"], "msg": "Input should be less than or equal to 3600"}
                    ],
                },
                {
                    "type": "urn:symptrack:problem:conflict",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "An entry with this id already exists with different content.",
                },
            ]
        }
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[ProblemFieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem(
    status: int,
    detail: str | None = None,
    *,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        # A plain HTTP error is about:blank (RFC 9457 4.2.1); our own kinds get a URN of their own.
        "type": f"urn:symptrack:problem:{code}" if code else "about:blank",
        "title": status_title(status),  # one title per status, whatever the cause
        "status": status,
        "detail": detail or status_title(status),
    }
    if errors is not None:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


def _loc(loc: Any) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _domain_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    headers: dict[str, str] = {}
    errors = None
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if exc.status == 503:  # a dependency is down (Redis for the sign-in throttle)
        headers["Retry-After"] = RETRY_AFTER_UNAVAILABLE
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, ValidationFailed):
        errors = [{"loc": _loc(e.loc), "msg": e.msg} for e in exc.errors]
    return problem(
        exc.status,
        exc.detail,
        code=exc.code,
        errors=errors,
        headers=headers or None,
    )


async def _http_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    return problem(exc.status_code, detail, headers=dict(exc.headers) if exc.headers else None)


async def _validation_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": _loc(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()]
    summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return problem(
        422,
        summary or "The request is not valid.",
        code="validation-error",
        errors=errors,
    )


# What a client is told to wait when a dependency failed: long enough for a blip to pass.
RETRY_AFTER_UNAVAILABLE = "5"
# SQLSTATEs that say the server can't serve this connection now, whatever the statement: connection
# exceptions (08), insufficient resources such as "too many clients" (53), the server shutting down,
# restarting or not yet accepting connections (57P01-57P05), and connections refused for the role
# (28) or the database (3D000), which a configuration change on the server can cause.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "28", "3D000")


def _database_unavailable() -> ProblemResponse:
    return problem(
        503,
        "The database is not available; try again shortly.",
        code="service-unavailable",
        headers={"Retry-After": RETRY_AFTER_UNAVAILABLE},
    )


async def _database_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DBAPIError)
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    unavailable = (
        isinstance(exc, OperationalError)
        or exc.connection_invalidated
        or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    )
    if not unavailable:
        return await _unhandled(request, exc)
    # Never echo the driver's message: it can carry SQL and parameters (patient data).
    logger.error("database unavailable: %s %s", type(exc.orig).__name__, sqlstate)
    return _database_unavailable()


async def _unreachable(_request: Request, exc: Exception) -> ProblemResponse:
    logger.error("database unreachable: %s", type(exc).__name__)
    return _database_unavailable()


async def _pool_timeout(_request: Request, _exc: Exception) -> ProblemResponse:
    # Every pooled connection stayed busy for SYMPTRACK_DB_POOL_TIMEOUT_SECONDS: overloaded, or held
    # by slow statements. Refused now, so clients back off instead of piling up behind the pool.
    logger.error("no database connection free within the pool timeout")
    return problem(
        503,
        "The service is busy; try again shortly.",
        code="service-unavailable",
        headers={"Retry-After": RETRY_AFTER_UNAVAILABLE},
    )


def _log_unhandled(exc: Exception) -> None:
    # The type and a traceback without messages: a message may hold patient data or SQL parameters.
    log_exception(logger, "unhandled error: %s", type(exc).__name__, exc=exc)


def _internal_error() -> ProblemResponse:
    return problem(500, "An unexpected error occurred.", code="internal-error")


async def _unhandled(_request: Request, exc: Exception) -> ProblemResponse:
    _log_unhandled(exc)
    return _internal_error()


class UnhandledErrorMiddleware:
    """Answers an exception no handler took with the 500 problem, and keeps it from the server.

    Starlette's ServerErrorMiddleware re-raises after sending its 500, and uvicorn then logs the
    exception with its message ("Exception in ASGI application") and closes the connection, so a
    phone's next request on that keep-alive connection would be reset. Here the exception is logged
    once, safely, and the connection stays usable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackingSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            _log_unhandled(exc)
            if tracked.started:
                # The answer is cut short; the server closes this connection, as it must.
                return
            response = _internal_error()
            # This sits outside the security headers middleware: add them here.
            response.raw_headers.extend([*SECURITY_HEADERS, (b"content-security-policy", API_CSP)])
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
    # asyncpg reports a refused or reset connection, a connect that timed out (within the pool
    # timeout) and an unknown host as plain OSErrors, outside SQLAlchemy's hierarchy.
    app.add_exception_handler(ConnectionError, _unreachable)
    app.add_exception_handler(TimeoutError, _unreachable)
    app.add_exception_handler(socket.gaierror, _unreachable)
    app.add_exception_handler(Exception, _unhandled)


PROBLEM_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route documents, each with the Problem schema."""
    return {
        status: {
            "description": status_title(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA_REF}},
        }
        for status in statuses
    }
