"""A guard on every test: no log record may hold an SQL parameter dump.

Records are checked as they are emitted, raw (the message, and the exception as Python's own
formatter would print it, messages included) and as production writes them (JsonFormatter): so an
engine without hide_parameters, or anything that logs a driver's message, fails the test it ran in.
"""

from __future__ import annotations

import logging
import re

from api.observability import JsonFormatter

# SQLAlchemy's "[parameters: (...)]" in an error, its echo lines ("[generated in 0.0001s] ('a', ...)"),
# and asyncpg's quote of a value it could not encode ("invalid input for query argument $3: '...'").
PARAMETER_DUMP = re.compile(
    r"\[parameters: "
    r"|\[(?:generated in|cached since|no key|raw sql|dialect \w+ does not support caching)[^\]]*\] [(\[{]"
    r"|query argument \$\d+: "
)


def parameter_dumps(record: logging.LogRecord) -> list[str]:
    """What in this record looks like an SQL parameter dump (empty when nothing does)."""
    texts = [record.getMessage(), str(getattr(record, "traceback", ""))]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
        texts.append(JsonFormatter().format(record))
    return [match.group(0) for text in texts for match in PARAMETER_DUMP.finditer(text)]


class ParameterDumpGuard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.offences: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            found = parameter_dumps(record)
        except Exception as exc:  # a record that cannot be formatted is a bug of its own
            found = [f"unformattable record ({type(exc).__name__})"]
        if found:
            self.offences.append(f"{record.name} {record.levelname}: {', '.join(sorted(set(found)))}")
