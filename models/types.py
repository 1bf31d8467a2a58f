"""Field types shared by request schemas: bounded instants and days, text either database can store."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

EARLIEST_YEAR, LATEST_YEAR = 1900, 2100


def _plausible_year(value: date) -> None:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")


def _instant(value: datetime) -> datetime:
    _plausible_year(value)
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


# An instant with an offset, in a plausible range (far-off years overflow time-zone arithmetic).
Instant = Annotated[AwareDatetime, AfterValidator(_instant)]
Day = Annotated[date, AfterValidator(_day)]
# Text either database can store: every string of a request model is one.
Text = Annotated[str, BeforeValidator(_storable)]
