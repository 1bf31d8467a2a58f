"""Access tokens (short-lived JWTs), device tokens, and the opaque secrets we store only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from services.errors import Unauthorized
from services.settings import Settings

ALGORITHM = "HS256"
ISSUER = "symptrack"
# Enrollment codes are typed by patients: no look-alike characters (0/O, 1/I/L).
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 12  # 31^12, about 59 bits
# Device tokens (OWASP "device cookies"): a JWT of their own type and audience, never an access token.
DEVICE_TYPE = "device"
DEVICE_AUDIENCE = "symptrack:sign-in-device"
DEVICE_TOKEN_DAYS = 365  # each sign-in and refresh hands out a fresh one
_DEVICE_TOKEN_MAX_LENGTH = 1024  # ours are about 300 characters; longer ones are not decoded


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    family_id: uuid.UUID
    expires_at: int  # `exp`, seconds since the epoch, as PyJWT reads it


def issue_access_token(settings: Settings, user_id: uuid.UUID, family_id: uuid.UUID, now: datetime) -> str:
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "fam": str(family_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=settings.access_token_minutes)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """The claims of a valid, unexpired token signed by us; otherwise 401."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "fam", "iss"]},
        )
        if claims.get("typ") != "access":
            raise Unauthorized("Not an access token.")
        return AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["fam"]), int(claims["exp"]))
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise Unauthorized("The access token is not valid.") from exc


@dataclass(frozen=True)
class DeviceClaims:
    user_id: uuid.UUID
    nonce: str


def issue_device_token(settings: Settings, user_id: uuid.UUID, now: datetime) -> str:
    """Proof that this device signed in to this account before: sign-in throttles it on its own."""
    claims = {
        "iss": ISSUER,
        "aud": DEVICE_AUDIENCE,
        "sub": str(user_id),
        "typ": DEVICE_TYPE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(days=DEVICE_TOKEN_DAYS)).timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def read_device_token(settings: Settings, token: str | None) -> DeviceClaims | None:
    """The claims of a valid device token; None for anything else (missing, expired, forged, garbage):
    a device token only ever exempts from the account's throttle, so a bad one is simply no device."""
    if not token or len(token) > _DEVICE_TOKEN_MAX_LENGTH:
        return None
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            audience=DEVICE_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
        )
        if claims.get("typ") != DEVICE_TYPE or not isinstance(claims["jti"], str):
            return None
        return DeviceClaims(uuid.UUID(claims["sub"]), claims["jti"])
    except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError):
        return None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_enrollment_code() -> str:
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(code[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


def normalize_enrollment_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_secret(value: str) -> str:
    """Refresh tokens and enrollment codes are high-entropy, so a plain SHA-256 is enough."""
    return hashlib.sha256(value.encode()).hexdigest()


def keyed_hash(settings: Settings, value: str) -> str:
    """For low-entropy values (emails, addresses) that we must look up but never store in clear."""
    return hmac.new(settings.secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()
