"""Field types shared by request schemas: bounded instants and days, text without NUL characters."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

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


def _text(value: str) -> str:
    # PostgreSQL cannot store NUL in text, and no person types one.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# An instant with an offset, in a plausible range (far-off years overflow time-zone arithmetic).
Instant = Annotated[AwareDatetime, AfterValidator(_instant)]
Day = Annotated[date, AfterValidator(_day)]
Text = Annotated[str, AfterValidator(_text)]
