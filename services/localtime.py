"""Time: instants stored and answered in UTC; local dates in the patient's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import overload
from zoneinfo import ZoneInfo


def local_date(instant: datetime, timezone: str) -> date:
    return instant.astimezone(ZoneInfo(timezone)).date()


def local_instant(day: date, wall_clock: time, timezone: str) -> datetime:
    """The instant a wall-clock time happens on a local day. In a DST gap the clock time does not
    exist; fold=0 gives the instant just after the gap, which is when a phone alarm would ring."""
    return datetime.combine(day, wall_clock, tzinfo=ZoneInfo(timezone))


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants where a local day starts and ends (23, 24 or 25 hours apart)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


@overload
def utc(instant: datetime) -> datetime: ...
@overload
def utc(instant: None) -> None: ...
def utc(instant: datetime | None) -> datetime | None:
    """Answers give instants in UTC, however the phone sent them (API.md conventions)."""
    return instant.astimezone(UTC) if instant is not None else None


SQLITE_LOCAL_DATE = "symptrack_local_date"


def sqlite_local_date(stored: str | None, timezone: str | None) -> str | None:
    """`local_date` as a SQLite function (registered on each connection as SQLITE_LOCAL_DATE): an
    instant as SQLite stores it (naive UTC text) to its ISO local date in the zone. PostgreSQL has
    `timezone(zone, instant)` for this."""
    if stored is None or timezone is None:
        return None
    instant = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    return instant.astimezone(ZoneInfo(timezone)).date().isoformat()
