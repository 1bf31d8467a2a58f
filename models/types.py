"""Field types shared by request schemas: strict numbers, RFC 3339 instants and days, storable text.

Every field of a request model uses one of these (or pydantic's StrictInt and StrictBool), so JSON
arrives as what it says it is: `true` and `"300"` are not numbers, `1700000000` is not an instant, and
no text reaches a database that cannot store it (tests/test_strict_inputs.py checks every model).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AllowInfNan, AwareDatetime, BeforeValidator, Strict

EARLIEST_YEAR, LATEST_YEAR = 1900, 2100

# RFC 3339 section 5.6: full-date "T" full-time, with a time offset (Z or +hh:mm / -hh:mm).
_RFC3339_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _plausible_year(value: date) -> None:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")


def _rfc3339(value: object) -> object:
    # Lax pydantic reads a JSON number (or a string of digits) as Unix time: a phone bug, not an instant.
    if isinstance(value, datetime):
        return value  # built in Python (demo data), not parsed from JSON
    if not isinstance(value, str) or not _RFC3339_DATE_TIME.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time string with an offset (2026-05-04T08:00:00-04:00)")
    return value


def _instant(value: datetime) -> datetime:
    _plausible_year(value)
    return value


def _full_date(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _FULL_DATE.fullmatch(value):
        raise ValueError("must be a date string YYYY-MM-DD")
    return value


def _day(value: date) -> date:
    _plausible_year(value)
    return value


def _storable(value: object) -> object:
    # Checked before pydantic's own string checks, whose message for a lone surrogate is cryptic.
    # PostgreSQL cannot store NUL in text, and no person types one. A lone UTF-16 surrogate ("\ud800",
    # sent by a phone that cut a string inside an emoji) is not a character: neither database driver
    # can encode it. Every other Python string encodes as UTF-8 and is stored as sent.
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds half of a character)") from None
    return value


def _visible(value: str) -> str:
    if not any(char.isprintable() and not char.isspace() for char in value):
        raise ValueError("must contain a visible character")
    return value


# An instant: an RFC 3339 string with an offset, in a plausible range (far-off years overflow time-zone
# arithmetic).
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_instant)]
Day = Annotated[date, BeforeValidator(_full_date), AfterValidator(_day)]
# Text either database can store: every string of a request model is one.
Text = Annotated[str, BeforeValidator(_storable)]
# Text that shows something: a name, a medication, a required note ("   " is none of them).
VisibleText = Annotated[Text, AfterValidator(_visible)]
# A JSON number (an integer is welcome), never a boolean or a string; finite. No validator function
# here: on an optional field it would spoil the OpenAPI document's minimum/maximum (pydantic 2.14).
Number = Annotated[float, Strict(), AllowInfNan(False)]
