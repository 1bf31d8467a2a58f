"""Tracebacks for the log with the exception messages left out.

A message can quote patient data: asyncpg's "invalid input for query argument $3: '<the note>'",
PostgreSQL's "Key (email)=(...) already exists", SQLAlchemy's "[parameters: ...]" when not hidden.
The frames and the exception types are what finds the bug; they hold code, never data.
"""

from __future__ import annotations

import logging
import traceback

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def exception_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def safe_traceback(exc: BaseException) -> str:
    """Like traceback.format_exception, chain and groups included, but each exception by type only."""
    lines: list[str] = []
    _format(exc, lines, set())
    return "".join(lines)


def _format(exc: BaseException, lines: list[str], seen: set[int]) -> None:
    seen.add(id(exc))
    cause = exc.__cause__
    context = None if exc.__suppress_context__ else exc.__context__
    if cause is not None and id(cause) not in seen:
        _format(cause, lines, seen)
        lines.append(_CAUSE)
    elif context is not None and id(context) not in seen:
        _format(context, lines, seen)
        lines.append(_CONTEXT)
    if exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.extract_tb(exc.__traceback__).format())
    lines.append(f"{exception_name(exc)} (message withheld)\n")
    if isinstance(exc, BaseExceptionGroup):
        for number, inner in enumerate(exc.exceptions, 1):
            if id(inner) not in seen:
                lines.append(f"\n[sub-exception {number} of {exception_name(exc)}]\n")
                _format(inner, lines, seen)


def log_exception(logger: logging.Logger, msg: str, *args: object, exc: BaseException) -> None:
    """An error line with the exception's type and safe traceback, and no exc_info: no handler or
    formatter downstream (ours, uvicorn's, an operator's) gets the chance to print the messages."""
    logger.error(
        msg,
        *args,
        extra={"exc_type": exception_name(exc), "traceback": safe_traceback(exc)},
    )
