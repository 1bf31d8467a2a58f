"""The one hierarchy of errors the services raise. api/errors.py maps each to problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str


class DomainError(Exception):
    status: int = 400
    title: str = "Bad request"
    # A stable slug; the problem `type` URI ends with it.
    code: str = "bad-request"

    # Most errors undo the request's writes. A few must keep them while still answering an error:
    # a counted failed login, or a token family revoked because a spent refresh token came back.
    keep_changes: bool = False

    def __init__(self, detail: str | None = None, *, keep_changes: bool = False) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.keep_changes = keep_changes


class NotFound(DomainError):
    """Also what the caller gets for anything outside their scope: ids leak nothing."""

    status, title, code = 404, "Not found", "not-found"


class Unauthorized(DomainError):
    status, title, code = 401, "Unauthorized", "unauthorized"


class Forbidden(DomainError):
    """For actions on resources the caller may see but not change (a patient editing a clinical field)."""

    status, title, code = 403, "Forbidden", "forbidden"


class Conflict(DomainError):
    status, title, code = 409, "Conflict", "conflict"


class ValidationFailed(DomainError):
    status, title, code = 422, "Unprocessable content", "validation-error"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))
        self.errors = list(errors)


class TooManyRequests(DomainError):
    status, title, code = 429, "Too many requests", "too-many-requests"

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(detail or "Too many attempts; try again later.")
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class ServiceUnavailable(DomainError):
    status, title, code = 503, "Service unavailable", "service-unavailable"
