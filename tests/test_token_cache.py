"""Verified access tokens kept in memory: verified once per token, never past their `exp`, never for a
changed token, bounded, and emptied by the revocation notices that empty the caller cache."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from models.base import utcnow
from services.accounts.caller_cache import FAMILY, USER, CallerCache
from services.accounts.token_cache import TokenCache, verified_claims
from services.accounts.tokens import AccessClaims, issue_access_token
from services.errors import Unauthorized
from services.settings import Settings
from tests.world import World


def _claims(expires_at: float = 2e9, user_id: uuid.UUID | None = None) -> AccessClaims:
    return AccessClaims(user_id or uuid.uuid4(), uuid.uuid4(), int(expires_at))


def test_an_entry_ends_when_its_token_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    cache = TokenCache()
    claims = _claims(expires_at=clock[0] + 60)
    cache.put("t", claims)
    clock[0] += 59.9
    assert cache.get("t") == claims
    clock[0] += 0.1  # PyJWT refuses a token from its `exp` on
    assert cache.get("t") is None
    assert "t" not in cache


def test_an_expired_token_is_refused_though_it_was_verified_before(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TokenCache()
    issued = utcnow() - timedelta(minutes=settings.access_token_minutes) + timedelta(seconds=30)
    token = issue_access_token(settings, uuid.uuid4(), uuid.uuid4(), issued)
    assert verified_claims(settings, token, cache).expires_at == int(issued.timestamp()) + (
        settings.access_token_minutes * 60
    )
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime(later))
    with pytest.raises(Unauthorized, match="expired"):
        verified_claims(settings, token, cache)
    assert len(cache) == 0


class _FrozenDatetime:
    """What PyJWT's `datetime.now(tz=timezone.utc)` answers, moved to `at`."""

    def __init__(self, at: float) -> None:
        import datetime as real

        self._now = real.datetime.fromtimestamp(at, real.UTC)
        self._real = real.datetime

    def now(self, tz: object = None) -> object:
        return self._now

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


def test_a_token_is_verified_once_and_a_changed_one_never_hits(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    cache = TokenCache()
    user_id, family_id = uuid.uuid4(), uuid.uuid4()
    token = issue_access_token(settings, user_id, family_id, utcnow())
    for _ in range(3):
        claims = verified_claims(settings, token, cache)
        assert (claims.user_id, claims.family_id) == (user_id, family_id)
    assert len(decodes) == 1
    header, payload, signature = token.split(".")
    other_signature = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    another_user = issue_access_token(settings, uuid.uuid4(), family_id, utcnow()).split(".")[1]
    changed = (f"{header}.{payload}.{other_signature}", f"{header}.{another_user}.{signature}", token + " ")
    for tampered in changed:
        with pytest.raises(Unauthorized):
            verified_claims(settings, tampered, cache)
        assert tampered not in cache
    assert len(decodes) == 4
    assert len(cache) == 1


def test_the_oldest_entries_go_first_beyond_the_bound() -> None:
    cache = TokenCache(max_entries=3)
    for n in range(5):
        cache.put(f"t{n}", _claims())
    assert len(cache) == 3
    assert "t0" not in cache and "t1" not in cache
    assert all(f"t{n}" in cache for n in (2, 3, 4))


def test_the_caller_cache_s_notices_empty_the_tokens_of_the_family_or_user() -> None:
    callers = CallerCache(ttl_seconds=60)
    tokens = callers.tokens
    first, other = _claims(), _claims()
    same_user = AccessClaims(first.user_id, uuid.uuid4(), first.expires_at)
    for name, claims in (("first", first), ("same_user", same_user), ("other", other)):
        tokens.put(name, claims)
    callers.invalidate(f"{FAMILY}:{first.family_id}")
    assert "first" not in tokens and "same_user" in tokens and "other" in tokens
    callers.invalidate(f"{USER}:{first.user_id}")
    assert "same_user" not in tokens and "other" in tokens
    callers.invalidate("garbled")
    assert len(tokens) == 0
    tokens.put("other", other)
    callers.stop_caching()  # the LISTEN connection was lost
    assert len(tokens) == 0


async def test_a_revoked_session_s_token_leaves_the_cache_and_is_refused_at_once(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    person = world["patient_a"]
    tokens = app.state.caller_cache.tokens
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
    assert person.access_token in tokens
    assert (await client.post("/v1/auth/logout", headers=person.headers)).status_code == 204
    assert person.access_token not in tokens
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 401
    # Still a valid signature: verified and kept again, but the session is over all the same.
    assert (await client.get("/v1/patients/me/doses", headers=person.headers)).status_code == 401


async def test_a_deactivated_user_s_tokens_leave_the_cache(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    person, admin = world["provider_a"], world["admin_a"]
    tokens = app.state.caller_cache.tokens
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
    assert person.access_token in tokens
    closed = await client.post(f"/v1/users/{person.user_id}/deactivate", headers=admin.headers)
    assert closed.status_code == 200
    assert person.access_token not in tokens
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 401
