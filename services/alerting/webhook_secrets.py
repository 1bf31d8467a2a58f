"""Webhook signing secrets are stored encrypted, so a copy of the database (a backup, a replica, a
dump) cannot sign alerts that a clinic's system would trust.

Fernet (AES-128-CBC and HMAC-SHA256) with the keys of SYMPTRACK_WEBHOOK_SECRET_KEYS: the first one
encrypts, every one decrypts (MultiFernet). Rotation: put a new key first, run `symptrack
rotate-webhook-keys` (re-encrypts every stored secret with it), then drop the old key.

In development with no key set, the key is derived from SYMPTRACK_SECRET_KEY (HKDF, a label of its
own), so a fresh checkout just runs. Outside development the setting is required (settings.py): a key
derived from the token-signing key would tie the two together, and rotating the token key, which is
what one does after a leak, would make every stored webhook secret unreadable.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.webhooks import WebhookEndpoint
from services.settings import Settings

_DEVELOPMENT_KEY_LABEL = b"symptrack webhook secret encryption v1"


class WebhookKeyError(RuntimeError):
    """A stored secret that none of the configured keys decrypts; the message says what to do."""


def derived_development_key(secret_key: str) -> str:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DEVELOPMENT_KEY_LABEL).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(key).decode()


def _keys(settings: Settings) -> tuple[str, ...]:
    if settings.webhook_secret_keys:
        return tuple(settings.webhook_secret_keys)
    if settings.environment == "development":
        return (derived_development_key(settings.secret_key),)
    raise WebhookKeyError("SYMPTRACK_WEBHOOK_SECRET_KEYS must be set outside development")


@lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(settings: Settings, secret: str) -> str:
    return _cipher(_keys(settings)).encrypt(secret.encode()).decode()


_UNREADABLE = (
    "a stored webhook secret cannot be decrypted with SYMPTRACK_WEBHOOK_SECRET_KEYS: "
    "the key it was encrypted with is missing"
)


def decrypt(settings: Settings, stored: str) -> str:
    try:
        return _cipher(_keys(settings)).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise WebhookKeyError(_UNREADABLE) from None


def reencrypt(settings: Settings, stored: str) -> str:
    """The same secret, encrypted with the first key."""
    try:
        return _cipher(_keys(settings)).rotate(stored.encode()).decode()
    except InvalidToken:
        raise WebhookKeyError(_UNREADABLE) from None


async def reencrypt_all(session: AsyncSession, settings: Settings) -> int:
    """Re-encrypts every endpoint's secrets with the first key (`symptrack rotate-webhook-keys`).
    All or nothing: when some secret opens with none of the keys, nothing changes and WebhookKeyError
    says which endpoints. Returns how many endpoints were re-encrypted."""
    endpoints = (
        (await session.execute(select(WebhookEndpoint).order_by(col(WebhookEndpoint.id)).with_for_update()))
        .scalars()
        .all()
    )
    unreadable = []
    for endpoint in endpoints:
        try:
            endpoint.secret = reencrypt(settings, endpoint.secret)
            if endpoint.previous_secret:
                endpoint.previous_secret = reencrypt(settings, endpoint.previous_secret)
        except WebhookKeyError:
            unreadable.append(str(endpoint.id))
    if unreadable:
        raise WebhookKeyError(
            f"{len(unreadable)} endpoint(s) have a secret that none of SYMPTRACK_WEBHOOK_SECRET_KEYS "
            "decrypts (put back the key they were encrypted with; nothing was changed): "
            + ", ".join(unreadable)
        )
    await session.flush()
    return len(endpoints)
