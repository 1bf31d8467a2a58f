"""Dependencies that routes declare: the database session, the caller, and the patient in scope.

A signed-in route declares one dependency that gives it everything (`SignedIn`, or `PatientInScope`
under /v1/patients/{patient_id}): FastAPI solves each dependency's own dependencies again for every
place it is declared, so five nested ones (session, settings, token, caller, scope) cost a quarter of a
dose's CPU. The unit of work inside makes its session at the first statement: GET /v1/me with a cached
caller makes none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.base import SecurityBase
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import read_audit
from api.observability import route_template
from models.accounts import Patient, User
from services.accounts import audit
from services.accounts.access import Caller, parse_patient_ref, patient_in_scope
from services.accounts.auth import cached_caller, load_caller
from services.database import UnitOfWork, after_rollback, unit_of_work
from services.errors import DomainError, NotFound
from services.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT
from services.settings import Settings


async def get_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    async with unit_of_work(request.app.state.session_factory) as work:
        yield work
        await _after_read(request, work)


async def _after_read(request: Request, work: UnitOfWork) -> None:
    """A read's audit records, in a transaction of their own once the answer is built (a request that
    made no session deferred none)."""
    if work.started:
        await read_audit.record_after_read(request, work.session)


async def get_settings_dep(request: Request) -> Settings:  # async: a sync one goes to the thread pool
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


# scope="function": the commit happens before the answer leaves, so a 201 means it is stored. The
# session is made at its first use (UnitOfWork): a request that runs no statement makes none.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


async def get_session(work: UnitOfWorkDep) -> AsyncSession:
    return work.session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]

# Reads the bearer token and gives /docs its Authorize button; we answer the 401 ourselves.
bearer_token = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


@dataclass(slots=True)
class SignedInRequest:
    """What a signed-in route needs: its unit of work (the session made at first use), the settings
    and the caller."""

    work: UnitOfWork
    settings: Settings
    caller: Caller

    @property
    def session(self) -> AsyncSession:
        return self.work.session


async def _signed_in(request: Request, work: UnitOfWork) -> SignedInRequest:
    settings: Settings = request.app.state.settings
    cache = getattr(request.app.state, "caller_cache", None)
    claims, caller = cached_caller(settings, await bearer_token(request), cache)
    if caller is None:
        caller = await load_caller(work.session, claims, cache)
    return SignedInRequest(work, settings, caller)


class _SignedIn(SecurityBase):
    """The one dependency of a signed-in route that names no patient: FastAPI solves it alone, where
    session, settings, token and caller were five nested ones (a quarter of a dose's CPU). It is also
    the bearer scheme itself, as `bearer_token`, so /docs keeps its Authorize button and the OpenAPI
    document says the same."""

    def __init__(self) -> None:
        self.model = bearer_token.model
        self.scheme_name = bearer_token.scheme_name

    async def __call__(self, request: Request) -> AsyncIterator[SignedInRequest]:
        async with unit_of_work(request.app.state.session_factory) as work:
            yield await _signed_in(request, work)
            await _after_read(request, work)


# scope="function": the commit happens before the answer leaves, so a 201 means it is stored.
SignedIn = Annotated[SignedInRequest, Depends(_SignedIn(), scope="function")]


def _action(request: Request) -> str:
    """What was done, as the matched route's template: "GET /v1/patients/{patient_id}" (ids stay out,
    and nothing from the raw path gets in)."""
    return f"{request.method} {route_template(request.scope)}"


def _status_of(exc: Exception) -> int:
    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    return 500


async def get_patient_in_scope(
    request: Request, patient_id: str, caller: Caller, session: AsyncSession
) -> AsyncIterator[tuple[Patient, User]]:
    """Every route under /v1/patients/{patient_id} passes here (`PatientInScope`): the patient is looked
    up within the caller's scope (else 404), and the access goes into the audit trail with its outcome:
    with the route's writes when it succeeds (a read's apart, after it: api/read_audit.py), in a
    transaction of its own after the rollback when it fails."""
    action = _action(request)

    def audit_failure(patient_ref: uuid.UUID | None, outcome: str, status: int) -> None:
        async def write(apart: AsyncSession) -> None:
            await audit.record(apart, caller, action, [patient_ref], outcome=outcome, status_code=status)

        after_rollback(session, write)

    try:
        # A PATCH changes the patient: it reads its own copy, not the one kept with a patient caller.
        found = await patient_in_scope(session, caller, patient_id, to_change=request.method == "PATCH")
    except NotFound:
        audit_failure(parse_patient_ref(caller, patient_id), "denied", 404)
        raise
    audit.defer(session, caller, action, [found[0].id])
    try:
        yield found
    except Exception as exc:
        audit.take_deferred(session)  # it rolls back with the rest
        status = _status_of(exc)
        audit_failure(found[0].id, "forbidden" if status == 403 else "error", status)
        raise
    if not read_audit.is_read(request):  # a read's record is written apart (_after_read)
        await audit.write_deferred(session)


_patient_scope = asynccontextmanager(get_patient_in_scope)


@dataclass(slots=True)
class PatientRequest(SignedInRequest):
    """What a route under /v1/patients/{patient_id} needs: a signed-in request's, and the patient in
    the caller's scope with their user account."""

    patient: Patient
    user: User


class _PatientInScope(SecurityBase):
    """The one dependency of every route under /v1/patients/{patient_id}: the signed-in request, then
    the patient looked up within the caller's scope and the access audited (`get_patient_in_scope`),
    solved by FastAPI as one. The bearer scheme in the OpenAPI document, as `_SignedIn`."""

    def __init__(self) -> None:
        self.model = bearer_token.model
        self.scheme_name = bearer_token.scheme_name

    async def __call__(
        self,
        request: Request,
        patient_id: Annotated[str, Path(description="A patient id, or `me` for the caller's own")],
    ) -> AsyncIterator[PatientRequest]:
        async with unit_of_work(request.app.state.session_factory) as work:
            signed_in = await _signed_in(request, work)
            async with _patient_scope(request, patient_id, signed_in.caller, work.session) as (patient, user):
                yield PatientRequest(work, signed_in.settings, signed_in.caller, patient, user)
            await _after_read(request, work)


patient_in_scope_dependency = _PatientInScope()
PatientInScope = Annotated[PatientRequest, Depends(patient_in_scope_dependency, scope="function")]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (default {DEFAULT_LIMIT})")]
CursorParam = Annotated[
    str | None, Query(description="`next_cursor` of the previous page", max_length=MAX_CURSOR_LENGTH)
]
