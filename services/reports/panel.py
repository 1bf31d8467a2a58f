"""The panel: one row per patient of the caller, most urgent first, a page at a time.

The order is a keyset: unacknowledged urgent flags (most first), then active flags (open or
acknowledged) by severity, the name, then the patient id. A page after the first counts only the flags
that existed when the first page was read (`as_of`, carried in the cursor), so a flag raised while a
provider pages (the usual write: an entry that fires a rule) cannot move a patient across the page
boundary, skipped or shown twice. The rows show the flags active now, and those not yet acknowledged
apart. Acknowledging, resolving, reopening or escalating a flag between pages does change its
patient's place; that patient may then be shown twice or, when a flag is closed, once less. The
cursor names no patient data: the boundary's name is looked up by its id.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from models.accounts import Patient, Role, User
from models.base import UTCDateTime
from models.common import Page
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import Flag, FlagStatus
from models.regimens import Regimen
from models.summaries import FlagCounts, PanelRow
from services.accounts import audit
from services.accounts.access import Caller, readable_patients, require_role
from services.localtime import SQLITE_LOCAL_DATE, utc
from services.pagination import (
    NOT_A_CURSOR,
    b64_json_encode,
    cursor_fields,
    cursor_instant,
    cursor_int,
    cursor_uuid,
    invalid_cursor,
)
from services.reports.summaries import (
    PANEL_DAYS,
    SCHEDULE_TEXT,
    Clock,
    Schedule,
    live,
    percent,
    times_on,
)

SEVERITIES = ("urgent", "high", "routine")
MAX_COUNT = 1_000_000  # no patient has a million open flags: a bigger number is not a cursor we made
# The sort key's counts: unacknowledged urgent, then active urgent, high and routine.
KEYS = ("unacknowledged_urgent", *SEVERITIES)
ACTIVE = (FlagStatus.open.value, FlagStatus.acknowledged.value)


@dataclass(frozen=True)
class PanelCursor:
    """The last row of the previous page (its flag counts as of `as_of`, and its id)."""

    as_of: datetime
    counts: tuple[int, int, int, int]
    id: uuid.UUID

    def encode(self) -> str:
        return b64_json_encode(
            {"as_of": self.as_of.isoformat(), "flags": list(self.counts), "id": str(self.id)}
        )

    @classmethod
    def decode(cls, value: str | None) -> PanelCursor | None:
        if not value:
            return None
        try:
            data = cursor_fields(value, "as_of", "flags", "id")
            as_of = cursor_instant(data["as_of"])
            flags = data["flags"]
            if not isinstance(flags, list) or len(flags) != len(KEYS):
                raise ValueError("not a cursor we made")
            counts = tuple(cursor_int(n, 0, MAX_COUNT - 1) for n in flags)
            return cls(as_of, (counts[0], counts[1], counts[2], counts[3]), cursor_uuid(data["id"]))
        except NOT_A_CURSOR as exc:
            raise invalid_cursor() from exc


def _active_flags(caller: Caller) -> Any:
    """Per patient of the caller's organization: active flags by severity and those still open
    (unacknowledged), now and, for the sort key, as of `as_of`."""

    def count(label: str, severity: str, *, unacknowledged: bool, snapshot: bool) -> Any:
        wanted = col(Flag.severity) == severity
        if unacknowledged:
            wanted = and_(wanted, col(Flag.status) == FlagStatus.open.value)
        if snapshot:
            wanted = and_(wanted, col(Flag.created_at) <= bindparam("as_of", type_=UTCDateTime()))
        return func.sum(case((wanted, 1), else_=0)).label(label)

    return (
        select(
            col(Flag.patient_id).label("patient_id"),
            count("unacknowledged_urgent_key", "urgent", unacknowledged=True, snapshot=True),
            *(count(f"{s}_key", s, unacknowledged=False, snapshot=True) for s in SEVERITIES),
            *(count(f"{s}_now", s, unacknowledged=False, snapshot=False) for s in SEVERITIES),
            *(count(f"unacknowledged_{s}_now", s, unacknowledged=True, snapshot=False) for s in SEVERITIES),
        )
        .where(col(Flag.organization_id) == caller.organization_id, col(Flag.status).in_(ACTIVE))
        .group_by(col(Flag.patient_id))
        .subquery("active_flags")
    )


@functools.lru_cache(maxsize=256)
def _page_statement(caller: Caller, after: bool) -> Any:
    """The page's patients in keyset order, for one caller (their scope is part of the statement):
    built once per caller and kept, since building and keying it cost more than running it. What
    changes from page to page is bound: `as_of`, `limit` and, after the first page, the boundary."""
    flags = _active_flags(caller)
    key_counts = [func.coalesce(getattr(flags.c, f"{k}_key"), 0) for k in KEYS]
    now_counts = [func.coalesce(getattr(flags.c, f"{s}_now"), 0) for s in SEVERITIES]
    unacknowledged = [func.coalesce(getattr(flags.c, f"unacknowledged_{s}_now"), 0) for s in SEVERITIES]
    sort_key = (*(-n for n in key_counts), func.lower(col(User.name)), col(Patient.id))
    statement = (
        readable_patients(caller)
        .with_only_columns(
            col(Patient.id), col(Patient.timezone), col(User.name), *key_counts, *now_counts, *unacknowledged
        )
        .join(User, col(User.id) == col(Patient.user_id))
        .outerjoin(flags, flags.c.patient_id == col(Patient.id))
    )
    if after:
        # The boundary's name from its id; a patient gone since sorts first among equals, so rows are
        # shown again rather than skipped.
        after_id = bindparam("after_id", type_=Uuid())
        boundary_name = (
            select(func.lower(col(User.name)))
            .join(Patient, col(Patient.user_id) == col(User.id))
            .where(col(Patient.id) == after_id)
            .scalar_subquery()
        )
        boundary = (
            *(-bindparam(f"after_{k}", type_=Integer) for k in KEYS),
            func.coalesce(boundary_name, ""),
            after_id,
        )
        statement = statement.where(tuple_(*sort_key) > tuple_(*boundary))
    return statement.order_by(*sort_key).limit(bindparam("limit", type_=Integer))


async def panel_page(
    session: AsyncSession, caller: Caller, now: datetime, limit: int, cursor: str | None
) -> Page[PanelRow]:
    require_role(caller, Role.provider, Role.admin)
    after = PanelCursor.decode(cursor)
    as_of = after.as_of if after else now
    params: dict[str, Any] = {"as_of": as_of, "limit": limit + 1}
    if after is not None:
        params.update({f"after_{k}": n for k, n in zip(KEYS, after.counts, strict=True)})
        params["after_id"] = after.id
    statement = _page_statement(caller, after is not None)
    rows = list((await (await session.connection()).execute(statement, params)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = PanelCursor(utc(as_of), (last[3], last[4], last[5], last[6]), last[0]).encode()
    items = await _rows(
        session,
        [
            (
                r[0],
                r[1],
                r[2],
                FlagCounts(urgent=r[7], high=r[8], routine=r[9]),
                FlagCounts(urgent=r[10], high=r[11], routine=r[12]),
            )
            for r in rows
        ],
        now,
    )
    audit.defer(session, caller, "GET /v1/panel", [item.patient_id for item in items])
    return Page(items=items, next_cursor=next_cursor)


def _latest(model: Any, column: Any, newest_first: Any, *where: Any) -> Any:
    """The newest row's column for the outer patient: a walk down an index, not over the history."""
    return (
        select(column)
        .where(col(model.patient_id) == col(Patient.id), live(model), *where)
        .order_by(newest_first.desc())
        .limit(1)
        .scalar_subquery()
    )


NEAR_DAYS = 2  # yesterday and today: whether a dose's time has come needs its instant (summaries.due)
_FAR = PANEL_DAYS - NEAR_DAYS


def _days() -> Any:
    """The 7 local days of one group of the page (patients whose today is the same), as bound
    parameters `d0` (the first) to `d6` (today): portable, and one SQL text for every call."""
    rows: list[Any] = [
        select(bindparam(f"d{n}", type_=Date).label("day"), literal_column(str(n)).label("n"))
        for n in range(PANEL_DAYS)
    ]
    return union_all(*rows).cte("days")


# A regimen's slots a day: its schedule holds one "time" key per slot (and no other "time": the
# schedule's entries forbid other keys, and their values are clock times and numbers). Counting the key
# in the stored text costs a tenth of parsing the JSON (json_array_length) on PostgreSQL.
_TIME_KEY = '"time"'
_SLOTS = (
    func.length(SCHEDULE_TEXT, type_=Integer)
    - func.length(func.replace(SCHEDULE_TEXT, _TIME_KEY, ""), type_=Integer)
) // len(_TIME_KEY)


def _aggregates(dialect: str) -> Any:
    """Per patient of the page, over its 7 local days, in one statement: the last check-in and GAD-7
    band (index walks), the worst grade, and adherence as counts: on days before yesterday, the
    scheduled slots (the times of the regimens in force that day) and the taken doses capped by them,
    per day; on yesterday and today, the taken doses (their slots count only once their time has come:
    Python decides that with zone-aware instants)."""
    in_page = _in_page(dialect)
    days = _days()
    window = (bindparam("d0", type_=Date), bindparam(f"d{PANEL_DAYS - 1}", type_=Date))
    # Taken doses by the day of the slot they count for (summaries.slot_day): a dose tagged
    # `scheduled_for` counts on that instant's local day, so a day either side is read too.
    owner = aliased(Patient)
    if dialect == "postgresql":
        tagged_day: Any = cast(func.timezone(col(owner.timezone), col(Dose.scheduled_for)), Date)
    else:
        tagged_day = getattr(func, SQLITE_LOCAL_DATE)(
            col(Dose.scheduled_for), col(owner.timezone), type_=Date
        )
    slot_day = case((col(Dose.scheduled_for).is_(None), col(Dose.local_date)), else_=tagged_day)
    taken = (
        select(
            col(Dose.patient_id).label("patient_id"),
            slot_day.label("day"),
            func.count().label("n"),
        )
        .join_from(Dose, owner, col(owner.id) == col(Dose.patient_id))
        .where(
            in_page(col(Dose.patient_id)),
            col(Dose.local_date).between(
                bindparam("day_before", type_=Date), bindparam("day_after", type_=Date)
            ),
            slot_day.between(*window),
            col(Dose.status) == "taken",
            live(Dose),
        )
        .group_by(col(Dose.patient_id), slot_day)
        .cte("taken")
    )
    # The regimens in force on some day before yesterday, with their number of daily slots (the
    # schedule's JSON read once per regimen, not once per day).
    regimens = (
        select(
            col(Regimen.patient_id).label("patient_id"),
            col(Regimen.start_date).label("start_date"),
            col(Regimen.end_date).label("end_date"),
            _SLOTS.label("slots"),
        )
        .where(
            in_page(col(Regimen.patient_id)),
            col(Regimen.start_date) <= bindparam(f"d{_FAR - 1}", type_=Date),
            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= window[0]),
            # A regimen replaced before it began (end before start) was never in force.
            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= col(Regimen.start_date)),
        )
        .subquery("regimens")
    )
    due = (
        select(regimens.c.patient_id, days.c.day, func.sum(regimens.c.slots).label("slots"))
        .join_from(
            regimens,
            days,
            and_(
                regimens.c.start_date <= days.c.day,
                or_(regimens.c.end_date.is_(None), regimens.c.end_date >= days.c.day),
            ),
        )
        .where(days.c.n < _FAR)
        .group_by(regimens.c.patient_id, days.c.day)
        .subquery("due")
    )
    n_taken = func.coalesce(taken.c.n, 0)
    far = (
        select(
            due.c.patient_id,
            func.sum(due.c.slots).label("scheduled"),
            func.sum(case((n_taken < due.c.slots, n_taken), else_=due.c.slots)).label("taken"),
        )
        .select_from(
            due.outerjoin(taken, and_(taken.c.patient_id == due.c.patient_id, taken.c.day == due.c.day))
        )
        .group_by(due.c.patient_id)
        .subquery("far")
    )

    def taken_on(n: int) -> Any:
        return func.sum(case((taken.c.day == bindparam(f"d{n}", type_=Date), taken.c.n), else_=0))

    near = (
        select(taken.c.patient_id, *(taken_on(n).label(f"near{n}") for n in range(_FAR, PANEL_DAYS)))
        .where(taken.c.day >= bindparam(f"d{_FAR}", type_=Date))
        .group_by(taken.c.patient_id)
        .subquery("near")
    )
    worst = (
        select(func.max(col(SymptomReport.grade)))
        .where(
            col(SymptomReport.patient_id) == col(Patient.id),
            col(SymptomReport.local_date).between(*window),
            live(SymptomReport),
        )
        .scalar_subquery()
    )
    return (
        select(
            col(Patient.id),
            _latest(CheckIn, col(CheckIn.local_date), col(CheckIn.local_date)),
            _latest(
                AnxietyScore,
                col(AnxietyScore.band),
                col(AnxietyScore.recorded_at),
                col(AnxietyScore.instrument) == "gad7",
            ),
            worst,
            func.coalesce(far.c.scheduled, 0),
            func.coalesce(far.c.taken, 0),
            *(func.coalesce(near.c[f"near{n}"], 0) for n in range(_FAR, PANEL_DAYS)),
        )
        .select_from(Patient)
        .outerjoin(far, far.c.patient_id == col(Patient.id))
        .outerjoin(near, near.c.patient_id == col(Patient.id))
        .where(in_page(col(Patient.id)))
    )


def _in_page(dialect: str) -> Any:
    """The page's patient ids: one array parameter on PostgreSQL (one SQL text, one prepared statement,
    for every page size), an expanding IN on SQLite."""
    if dialect == "postgresql":
        ids = bindparam("ids", type_=postgresql.ARRAY(Uuid()))
        return lambda column: column == any_(ids)
    expanding: Any = bindparam("ids", expanding=True)
    return lambda column: column.in_(expanding)


# Statements are built once, at import, per dialect (ENGINEERING.md, "Hot paths").
_AGGREGATES = {dialect: _aggregates(dialect) for dialect in ("postgresql", "sqlite")}
_NEAR_SCHEDULES = {
    dialect: select(
        col(Regimen.patient_id), col(Regimen.start_date), col(Regimen.end_date), SCHEDULE_TEXT
    ).where(
        _in_page(dialect)(col(Regimen.patient_id)),
        col(Regimen.start_date) <= bindparam("end", type_=Date),
        or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= bindparam("start", type_=Date)),
    )
    for dialect in ("postgresql", "sqlite")
}


async def _rows(
    session: AsyncSession,
    patients: list[tuple[uuid.UUID, str, str, FlagCounts, FlagCounts]],
    now: datetime,
) -> list[PanelRow]:
    """The page's rows: each patient's last 7 local days. One aggregate statement per local today
    among the page's patients (one, or two when their zones straddle midnight), and one for the
    regimens in force yesterday and today, whatever the page's size."""
    if not patients:
        return []
    dialect = session.get_bind().dialect.name
    connection = await session.connection()
    clocks = {timezone: Clock(timezone, now) for timezone in {timezone for _, timezone, *_ in patients}}
    today = {patient_id: clocks[timezone].today for patient_id, timezone, *_ in patients}
    groups: dict[date, list[uuid.UUID]] = defaultdict(list)
    for patient_id, day in today.items():
        groups[day].append(patient_id)

    found: dict[uuid.UUID, Any] = {}
    for day, ids in groups.items():
        params: dict[str, Any] = {"ids": ids}
        params.update({f"d{n}": day - timedelta(days=PANEL_DAYS - 1 - n) for n in range(PANEL_DAYS)})
        params["day_before"] = day - timedelta(days=PANEL_DAYS)
        params["day_after"] = day + timedelta(days=1)
        for row in (await connection.execute(_AGGREGATES[dialect], params)).all():
            found[row[0]] = row
    near: dict[uuid.UUID, list[Schedule]] = defaultdict(list)
    near_window = {
        "ids": list(today),
        "start": min(today.values()) - timedelta(days=NEAR_DAYS - 1),
        "end": max(today.values()),
    }
    for patient_id, start_date, end_date, schedule in (
        await connection.execute(_NEAR_SCHEDULES[dialect], near_window)
    ).all():
        # A regimen replaced before it began (end before start) was never in force.
        if end_date is None or end_date >= start_date:
            near[patient_id].append(Schedule.of_text(start_date, end_date, schedule))

    rows = []
    for patient_id, timezone, name, active_flags, unacknowledged in patients:
        _, last_check_in, last_band, worst, *counts = found[patient_id]
        # Sums of counts are NUMERIC on PostgreSQL (Decimal in Python): counted here as ints.
        scheduled, taken, *near_taken = map(int, counts)
        schedules = near.get(patient_id)
        if schedules:
            clock = clocks[timezone]
            for back, doses in zip(range(NEAR_DAYS - 1, -1, -1), near_taken, strict=True):
                day = clock.today - timedelta(days=back)
                due, got = clock.counted(day, times_on(schedules, day), doses)
                scheduled += due
                taken += got
        rows.append(
            PanelRow(
                patient_id=patient_id,
                name=name,
                open_flags=active_flags,
                unacknowledged=unacknowledged,
                last_check_in=last_check_in,
                adherence_7d=percent(taken, scheduled),
                gad7_last_band=last_band,
                worst_grade_7d=worst,
            )
        )
    return rows
