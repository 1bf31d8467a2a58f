"""Standard Webhooks signatures, with the reference library."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_header(secrets_in_force: list[str], message_id: str, timestamp: datetime, body: str) -> str:
    """`v1,<sig>`, one per secret in force, space-separated: during a rotation the receiver may hold
    either secret and still verify."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets_in_force)
