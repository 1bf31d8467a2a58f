"""Request body limit and security headers, as plain ASGI middleware."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import status_title

MAX_BODY_BYTES = 1024 * 1024  # API.md: bodies over 1 MiB answer 413

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# Everything but the interactive docs is JSON. The docs load Swagger UI from this server only (its
# page starts it with an inline script; its icons are data: images).
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; frame-ancestors 'none'"
)
DOCS_PREFIX = "/docs"


def too_many_requests(
    detail: str, retry_after: int, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[dict[str, object], bytes]:
    """A 429 problem+json with Retry-After, as the ASGI start message and body: for the middleware
    that refuse before any route runs (the rate limit, the fair-share gate)."""
    body = json.dumps(
        {"type": "about:blank", "title": status_title(429), "status": 429, "detail": detail}
    ).encode()
    start = {
        "type": "http.response.start",
        "status": 429,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"retry-after", str(retry_after).encode()),
            (b"content-length", str(len(body)).encode()),
            *(extra_headers or []),
        ],
    }
    return start, body


class _TooLarge(StarletteHTTPException):
    """An HTTP error, so the framework's body parsing passes it on as it is (413, problem+json)."""

    def __init__(self) -> None:
        super().__init__(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")


async def _send_413(send: Send) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": status_title(413),
            "status": 413,
            "detail": f"The request body is larger than {MAX_BODY_BYTES} bytes.",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TrackingSend:
    """Passes the app's messages on, remembering whether the response has started (after that, an
    error can no longer be answered: the connection must be cut)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class BodyLimitMiddleware:
    """Refuses bodies over the limit: at once when Content-Length says so, else while reading."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_413(send)
            return
        seen = 0
        tracked = TrackingSend(send)

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, tracked)
        except _TooLarge:
            if not tracked.started:
                await _send_413(send)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        csp = DOCS_CSP if path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/") else API_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                headers.extend((n, v) for n, v in SECURITY_HEADERS if n not in present)
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp))
            await send(message)

        await self.app(scope, receive, with_headers)
