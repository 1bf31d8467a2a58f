"""Sign-in, token refresh, sign-out and patient enrollment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import SessionDep, SettingsDep, SignedIn
from api.errors import problem_responses
from models.auth import EnrollRequest, RefreshRequest, TokenPair
from services.accounts import auth
from services.errors import FieldError, ValidationFailed

router = APIRouter(prefix="/v1/auth", tags=["auth"])

DEVICE_HELP = (
    "The `device_token` of an earlier sign-in, refresh or enrollment answer on this device. With one "
    "issued for this account, failed attempts count against this device only, so wrong passwords "
    "tried by others (which throttle the account) don't lock it out. A missing, expired "
    "or unknown one is ignored: a plain sign-in."
)


FORM_ONLY = (
    "Sign-in takes an OAuth2 password form (Content-Type: application/x-www-form-urlencoded, fields "
    "username and password), not JSON."
)


def _form_only(request: Request) -> None:
    """Tell a JSON caller what the endpoint takes, before the form's fields are found missing."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
        raise ValidationFailed([FieldError(("body",), FORM_ONLY)], FORM_ONLY)


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post(
    "/token",
    summary="Sign in with email and password (OAuth2 password flow)",
    response_model=TokenPair,
    dependencies=[Depends(_form_only)],
    responses=problem_responses(401, 429),
)
async def sign_in(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    device_token: Annotated[str | None, Form(description=DEVICE_HELP)] = None,
) -> TokenPair:
    """Takes an OAuth2 password form (application/x-www-form-urlencoded: `username` is the email,
    `password`, and the `device_token` this device was last given), not JSON. Answers an access token
    (send it as `Authorization: Bearer ...`), a refresh token and a device token. Repeated wrong passwords
    answer 429 with Retry-After."""
    return await auth.sign_in(
        session,
        settings,
        form.username,
        form.password,
        _address(request),
        request.app.state.counters,
        device_token,
    )


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new pair (the old one is spent)",
    response_model=TokenPair,
    responses=problem_responses(401),
)
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """The refresh token is spent by this exchange: presenting a spent one again revokes the whole
    session (every token of its sign-in)."""
    return await auth.rotate_refresh_token(session, settings, body.refresh_token)


@router.post(
    "/logout",
    summary="Sign out: revoke this session's refresh tokens and access tokens",
    status_code=204,
    responses=problem_responses(401),
)
async def logout(signed_in: SignedIn) -> Response:
    """Revokes the session the access token belongs to: its refresh tokens and its access tokens
    stop working at once."""
    await auth.sign_out(signed_in.session, signed_in.caller)
    return Response(status_code=204)


@router.post(
    "/enroll",
    summary="A patient sets their password with their one-time enrollment code",
    response_model=TokenPair,
    responses=problem_responses(401, 429),
)
async def enroll(
    request: Request, body: EnrollRequest, session: SessionDep, settings: SettingsDep
) -> TokenPair:
    """A patient sets their password with the one-time code their provider was given when the patient
    was registered; the code works once and expires. Answers a token pair, as a sign-in does."""
    return await auth.enroll(
        session, settings, body.enrollment_code, body.password, _address(request), request.app.state.counters
    )
