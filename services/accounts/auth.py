"""Signing in and out: password sign-in, refresh-token rotation, enrollment, and who a token is."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import anyio
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient, Role, User
from models.auth import EnrollmentCode, RefreshToken, TokenFamily, TokenPair
from models.base import utcnow
from services.accounts import caller_cache, throttle
from services.accounts.access import Caller
from services.accounts.caller_cache import CallerCache
from services.accounts.passwords import dummy_hash, hash_password, password_problem, verify_password
from services.accounts.token_cache import verified_claims
from services.accounts.tokens import (
    AccessClaims,
    hash_secret,
    issue_access_token,
    issue_device_token,
    new_enrollment_code,
    new_refresh_token,
    normalize_enrollment_code,
    read_device_token,
)
from services.accounts.users import normalize_email
from services.database import after_rollback
from services.errors import FieldError, TooManyRequests, Unauthorized, ValidationFailed
from services.platform.counters import Counters
from services.settings import Settings

BAD_CREDENTIALS = "Incorrect email or password."
BAD_REFRESH = "The refresh token is not valid."
BAD_ENROLLMENT = "The enrollment code is not valid, was already used, or has expired."


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    email: str,
    password: str,
    address: str | None,
    counters: Counters,
    device_token: str | None = None,
) -> TokenPair:
    """The same answer, after the same work, for a wrong password and an unknown email.

    A device token this account was given before throttles the attempt by that device instead of by
    the account, so strangers' failures can't lock the patient out; any other one counts as none."""
    now = utcnow()
    email = normalize_email(email)
    # A NUL can be in no stored email (and PostgreSQL refuses it in a query): no such account.
    user = None if "\x00" in email else await session.scalar(select(User).where(col(User.email) == email))
    # Give the database back before the hash (nothing is written yet): the read's transaction holds
    # SQLite's one write lock (transactions begin IMMEDIATE) or a PostgreSQL pool connection, and a
    # hash takes a tenth of a second of CPU, seconds on a loaded machine. Held through it, a few
    # concurrent sign-ins queued every writer past the busy timeout: 503s to correct clients.
    await session.commit()
    device = read_device_token(settings, device_token)
    known_device = device is not None and user is not None and device.user_id == user.id
    keys = throttle.sign_in_keys(settings, email, address, device.nonce if device and known_device else None)
    wait = await throttle.reserve(counters, settings, keys, now)  # Redis down: 503, nothing counted
    if wait is not None:
        raise TooManyRequests(wait)
    # Always verify against a hash, a dummy one when there is no account, so timing tells nothing.
    # Argon2 takes a tenth of a second of CPU: off the event loop, so other requests go on meanwhile.
    known_hash = user.password_hash if user and user.password_hash else None
    try:
        password_ok = await anyio.to_thread.run_sync(verify_password, password, known_hash or dummy_hash())
        if user is None or known_hash is None or not user.is_active or not password_ok:
            raise Unauthorized(BAD_CREDENTIALS)  # the attempt stays counted: counters are apart
        pair = await start_session(session, settings, user.id, now)
    except Unauthorized:
        raise
    except Exception:
        # The database failed, not the caller: this attempt is no failed sign-in.
        await throttle.give_back(counters, keys)
        raise
    # The device's count, or the account's; a known device's success leaves strangers' count alone.
    await throttle.clear(counters, keys[0])
    for key in keys[1:]:
        await throttle.release(counters, key)
    return pair


async def start_session(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, now: datetime
) -> TokenPair:
    family = TokenFamily(user_id=user_id, created_at=now)
    session.add(family)
    await session.flush()
    return await _issue_pair(session, settings, user_id, family.id, now)


async def _issue_pair(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, family_id: uuid.UUID, now: datetime
) -> TokenPair:
    refresh = new_refresh_token()
    session.add(
        RefreshToken(
            family_id=family_id,
            token_hash=hash_secret(refresh),
            created_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_days),
        )
    )
    await session.flush()
    return TokenPair(
        access_token=issue_access_token(settings, user_id, family_id, now),
        expires_in=settings.access_token_minutes * 60,
        refresh_token=refresh,
        device_token=issue_device_token(settings, user_id, now),
    )


async def rotate_refresh_token(session: AsyncSession, settings: Settings, presented: str) -> TokenPair:
    """Spend the presented refresh token for a new pair. A spent one presented again means it was
    stolen or replayed: the whole family is revoked, the thief's and the owner's sessions alike."""
    now = utcnow()
    row = (
        await session.execute(
            select(RefreshToken, TokenFamily, User)
            .join(TokenFamily, col(TokenFamily.id) == col(RefreshToken.family_id))
            .join(User, col(User.id) == col(TokenFamily.user_id))
            .where(col(RefreshToken.token_hash) == hash_secret(presented))
        )
    ).first()
    if row is None:
        raise Unauthorized(BAD_REFRESH)
    token, family, user = row
    if family.revoked_at is not None or not user.is_active:
        raise Unauthorized(BAD_REFRESH)
    if token.spent_at is not None:
        _revoke_after_refusal(session, family.id, now)
        raise Unauthorized(BAD_REFRESH)
    if token.expires_at <= now:
        raise Unauthorized("The refresh token has expired.")
    # Spend it only if nobody else did in the meantime (two racing refreshes: one wins, one is reuse).
    spent = await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == token.id, col(RefreshToken.spent_at).is_(None))
        .values(spent_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        _revoke_after_refusal(session, family.id, now)
        raise Unauthorized(BAD_REFRESH)
    return await _issue_pair(session, settings, user.id, family.id, now)


def _revoke_after_refusal(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    """A spent refresh token came back: the request is refused (and rolls back), and the family is
    revoked all the same, in a transaction of its own."""

    async def revoke(apart: AsyncSession) -> None:
        await revoke_family(apart, family_id, "reuse", now)

    after_rollback(session, revoke)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, reason: str, now: datetime) -> None:
    await session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.id) == family_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    # Every process forgets the session once this commits, so its access token stops working at once.
    await caller_cache.announce(session, caller_cache.FAMILY, family_id)


async def sign_out(session: AsyncSession, caller: Caller) -> None:
    await revoke_family(session, caller.family_id, "logout", utcnow())


# Who a token is: the user, whether the session was revoked, and a patient's own record. Built once.
_CALLER = (
    select(User, col(TokenFamily.revoked_at), Patient)
    .join(TokenFamily, col(TokenFamily.user_id) == col(User.id))
    .outerjoin(Patient, col(Patient.user_id) == col(User.id))
    .where(col(User.id) == bindparam("user_id"), col(TokenFamily.id) == bindparam("family_id"))
)


def cached_caller(
    settings: Settings, token: str | None, cache: CallerCache | None
) -> tuple[AccessClaims, Caller | None]:
    """Who a bearer token is, first step: the token's claims (valid signature, not expired, else 401;
    verified once per token, `cache.tokens`), and its caller when `cache` holds it (no statement, no
    session). Else `load_caller` reads it: session not revoked, user active."""
    if not token:
        raise Unauthorized("Sign in to use this route.")
    claims = verified_claims(settings, token, cache.tokens if cache is not None else None)
    return claims, cache.get(claims.family_id, claims.user_id) if cache is not None else None


async def load_caller(session: AsyncSession, claims: AccessClaims, cache: CallerCache | None) -> Caller:
    """The caller the claims name, read from the database (and kept in `cache`); 401 if the session
    was revoked or the user closed."""
    generation = cache.generation if cache is not None else 0
    row = (await session.execute(_CALLER, {"user_id": claims.user_id, "family_id": claims.family_id})).first()
    if row is None:
        raise Unauthorized("The access token is not valid.")
    user, revoked_at, patient = row
    if revoked_at is not None or not user.is_active:
        raise Unauthorized("This session has ended; sign in again.")
    # Kept beyond this request: out of its session, so its rollback can't expire them.
    for kept in (user, patient) if patient is not None else (user,):
        session.expunge(kept)
    caller = Caller(
        user_id=user.id,
        role=Role(user.role),
        organization_id=user.organization_id,
        family_id=claims.family_id,
        patient_id=patient.id if patient else None,
        email=user.email,
        name=user.name,
        own_records=(patient, user) if patient and user.role == Role.patient else None,
    )
    if cache is not None:
        cache.put(caller, generation)
    return caller


async def issue_enrollment_code(
    session: AsyncSession, settings: Settings, patient_id: uuid.UUID, created_by: uuid.UUID | None
) -> tuple[str, datetime]:
    """A new code for the patient; any earlier unused code stops working."""
    now = utcnow()
    await session.execute(
        update(EnrollmentCode)
        .where(col(EnrollmentCode.patient_id) == patient_id, col(EnrollmentCode.used_at).is_(None))
        .values(expires_at=now)
    )
    code = new_enrollment_code()
    expires_at = now + timedelta(days=settings.enrollment_code_days)
    session.add(
        EnrollmentCode(
            patient_id=patient_id,
            code_hash=hash_secret(normalize_enrollment_code(code)),
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return code, expires_at


async def enroll(
    session: AsyncSession,
    settings: Settings,
    code: str,
    password: str,
    address: str | None,
    counters: Counters,
) -> TokenPair:
    """A patient sets their password with a code from their provider; the code then never works again."""
    now = utcnow()
    if problem := password_problem(password):
        raise ValidationFailed([FieldError(("body", "password"), problem)])
    keys = throttle.sign_in_keys(settings, "enrollment", address)[1:]  # by address: guessing codes
    wait = await throttle.reserve(counters, settings, keys, now)  # Redis down: 503, nothing counted
    if wait is not None:
        raise TooManyRequests(wait)
    try:
        pair = await _enroll_with_code(session, settings, code, password, now)
    except Unauthorized:
        raise  # the attempt stays counted: counters are apart
    except Exception:
        await throttle.give_back(counters, keys)  # the database failed, not the caller
        raise
    for key in keys:
        await throttle.release(counters, key)
    return pair


async def _enroll_with_code(
    session: AsyncSession, settings: Settings, code: str, password: str, now: datetime
) -> TokenPair:
    row = (
        await session.execute(
            select(EnrollmentCode, Patient, col(User.is_active))
            .join(Patient, col(Patient.id) == col(EnrollmentCode.patient_id))
            .join(User, col(User.id) == col(Patient.user_id))
            .where(col(EnrollmentCode.code_hash) == hash_secret(normalize_enrollment_code(code)))
        )
    ).first()
    # A deactivated patient can't sign in by a code either; the code stays unused for a reactivation.
    valid = row is not None and row[0].used_at is None and row[0].expires_at > now and row[2]
    if row is None or not valid:
        raise Unauthorized(BAD_ENROLLMENT)
    enrollment, patient, _ = row
    # Use it only if no concurrent request did: a code works exactly once.
    used = await session.execute(
        update(EnrollmentCode)
        .where(col(EnrollmentCode.id) == enrollment.id, col(EnrollmentCode.used_at).is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise Unauthorized(BAD_ENROLLMENT)
    password_hash = await anyio.to_thread.run_sync(hash_password, password)
    await session.execute(
        update(User).where(col(User.id) == patient.user_id).values(password_hash=password_hash)
    )
    return await start_session(session, settings, patient.user_id, now)
