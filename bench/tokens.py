"""Access tokens for every bench account, minted with the app's own function and secret.

Each account has a token family row (bench.population), so the API accepts these tokens exactly as
it accepts a signed-in phone's: signature, expiry, family not revoked, user active.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from services.accounts.tokens import issue_access_token
from services.settings import Settings

# The longest lifetime the settings allow: a run must never see a token expire.
TOKEN_MINUTES = 24 * 60


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a server started with `env` has (for the bench's own in-process use)."""
    prefix = "SYMPTRACK_"
    values: dict[str, object] = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    # The environment spells lists as JSON; keyword arguments take them as lists.
    if isinstance(keys := values.get("webhook_secret_keys"), str):
        values["webhook_secret_keys"] = json.loads(keys)
    return Settings(**values)  # type: ignore[arg-type]


def mint(settings: Settings, user_id: uuid.UUID, family_id: uuid.UUID, now: datetime) -> str:
    return issue_access_token(settings, user_id, family_id, now)
