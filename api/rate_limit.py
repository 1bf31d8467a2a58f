"""Request rate limits per access token and per client address, counted in the app's counters: Redis
when configured (shared by every API process), else this process's memory."""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import SECURITY_HEADERS, too_many_requests
from models.base import utcnow
from services.accounts.throttle import address_key
from services.accounts.tokens import keyed_hash
from services.platform.counters import Counters, CountersUnavailable
from services.settings import Settings

WINDOW_SECONDS = 60
EXEMPT = ("/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json")


def _too_many(retry_after: int) -> tuple[dict[str, object], bytes]:
    # Outside the security-headers middleware: the refusal carries them itself.
    return too_many_requests("Too many requests; try again later.", retry_after, SECURITY_HEADERS)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in EXEMPT:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        keys = []
        if settings.rate_limit_per_address_per_minute and scope.get("client"):
            keys.append(
                (
                    "rate:address:" + keyed_hash(settings, address_key(scope["client"][0])),
                    settings.rate_limit_per_address_per_minute,
                )
            )
        authorization = dict(scope.get("headers", [])).get(b"authorization", b"")
        if settings.rate_limit_per_token_per_minute and authorization.lower().startswith(b"bearer "):
            # The token's hash, not the token: a counter key must never hold a credential.
            digest = hashlib.sha256(authorization[7:].strip()).hexdigest()
            keys.append(("rate:token:" + digest, settings.rate_limit_per_token_per_minute))
        try:
            wait = await self._hits(state, keys) if keys else None
        except CountersUnavailable:
            # Redis is down (the counters logged it once): a patient's dose or check-in matters more
            # than a rate limit, so the request goes on. Sign-in, whose throttle guards passwords,
            # answers 503 instead (services/accounts/throttle.py).
            wait = None
        if wait is not None:
            start, body = _too_many(wait)
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    async def _hits(self, state: object, keys: list[tuple[str, int]]) -> int | None:
        now = utcnow()
        counters: Counters = state.counters  # type: ignore[attr-defined]
        waits = []
        for key, limit in keys:
            count, left = await counters.hit(key, WINDOW_SECONDS, now)
            if count > limit:
                waits.append(left)
        return max(waits) if waits else None
