"""The one hierarchy of errors the services raise. api/errors.py maps each to problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

# Every problem with a given status carries one title: RFC 9110's reason phrase. Python 3.11's
# HTTPStatus still has the older names of these two.
_RFC9110_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def status_title(status: int) -> str:
    if status in _RFC9110_PHRASES:
        return _RFC9110_PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str


class DomainError(Exception):
    status: int = 400
    # A stable slug; the problem `type` URI ends with it (the title is the status's, see above).
    code: str = "bad-request"

    @property
    def title(self) -> str:
        return status_title(self.status)

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class NotFound(DomainError):
    """Also what the caller gets for anything outside their scope: ids leak nothing."""

    status, code = 404, "not-found"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    """For actions on resources the caller may see but not change (a patient editing a clinical field)."""

    status, code = 403, "forbidden"


class Conflict(DomainError):
    status, code = 409, "conflict"


class ValidationFailed(DomainError):
    status, code = 422, "validation-error"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))
        self.errors = list(errors)


class TooManyRequests(DomainError):
    status, code = 429, "too-many-requests"

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(detail or "Too many attempts; try again later.")
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class ServiceUnavailable(DomainError):
    status, code = 503, "service-unavailable"
