"""Dependencies that routes declare: the database session, the caller, and the patient in scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.accounts import Patient, User
from services.accounts.access import Caller, parse_patient_ref, patient_in_scope
from services.accounts.auth import authenticate
from services.database import keep_on_error, session_scope
from services.errors import DomainError, NotFound
from services.pagination import DEFAULT_LIMIT, MAX_LIMIT
from services.platform import audit
from services.settings import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with session_scope(request.app.state.session_factory) as session:
        yield session


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


# scope="function": the commit happens before the answer leaves, so a 201 means it is stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]

# Reads the bearer token and gives /docs its Authorize button; we answer the 401 ourselves.
bearer_token = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


async def get_caller(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(bearer_token)]
) -> Caller:
    return await authenticate(session, settings, token)


CallerDep = Annotated[Caller, Depends(get_caller, scope="function")]


def _action(request: Request) -> str:
    """What was done, as the route template: "GET /v1/patients/{patient_id}" (ids stay out)."""
    path = request.url.path
    for name, value in request.path_params.items():
        path = path.replace(f"/{value}", "/{" + name + "}")
    return f"{request.method} {path}"


def _status_of(exc: Exception) -> int:
    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    return 500


async def get_patient_in_scope(
    request: Request,
    patient_id: Annotated[str, Path(description="A patient id, or `me` for the caller's own")],
    caller: CallerDep,
    session: SessionDep,
) -> AsyncIterator[tuple[Patient, User]]:
    """Every route under /v1/patients/{patient_id} passes here: the patient is looked up within the
    caller's scope (else 404), and the access goes into the audit trail with its outcome. The route
    runs inside a savepoint, so a failure undoes its writes but keeps the audit record of it."""
    action = _action(request)
    try:
        found = await patient_in_scope(session, caller, patient_id)
    except NotFound:
        await audit.record(
            session,
            caller,
            action,
            [parse_patient_ref(caller, patient_id)],
            outcome="denied",
            status_code=404,
        )
        keep_on_error(session)
        raise
    savepoint = await session.begin_nested()
    try:
        yield found
    except Exception as exc:
        if savepoint.is_active:
            await savepoint.rollback()
        status = _status_of(exc)
        outcome = "forbidden" if status == 403 else "error"
        await audit.record(session, caller, action, [found[0].id], outcome=outcome, status_code=status)
        keep_on_error(session)
        raise
    if savepoint.is_active:
        await savepoint.commit()
    await audit.record(session, caller, action, [found[0].id])


PatientInScope = Annotated[tuple[Patient, User], Depends(get_patient_in_scope, scope="function")]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (default {DEFAULT_LIMIT})")]
CursorParam = Annotated[str | None, Query(description="`next_cursor` of the previous page")]
