"""Summaries: one patient over a window of local days (the panel, in panel.py, shares the helpers).

Everything is read over the window only (indexes on (patient_id, local_date)), so the cost follows
the window asked for, not the length of the patient's history: counts and the last grades in SQL, the
taken doses as plain Core rows. Python walks the window's days to lay the regimen's schedule over
them; zone-aware instants are built only for the on-time comparison, and by offset arithmetic on the
days without a clock change (`Clock`).
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, bindparam, cast, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from models.accounts import Patient
from models.base import UTCDateTime
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import Flag, FlagStatus
from models.regimens import Regimen
from models.summaries import (
    Adherence,
    CheckInSummary,
    DailyMg,
    FlagCounts,
    FlagInWindow,
    Gad7Baseline,
    Gad7Change,
    Gad7Point,
    Gad7Summary,
    PatientSummary,
    RatingPoint,
    RatingSummary,
    SymptomSummary,
)
from services.accounts.access import Caller
from services.clinical.gad7 import gad7_change_meaning
from services.errors import FieldError, ValidationFailed
from services.localtime import day_bounds, local_date, local_instant, utc
from services.prescribing.regimens import to_public as regimen_public
from services.prescribing.regimens import treatment_baseline

DEFAULT_WINDOW_DAYS = 30
# API.md: summary and report windows are at most 366 days (422 on `from`); exports, which stream a
# page at a time, may span longer.
MAX_WINDOW_DAYS = 366
MAX_EXPORT_DAYS = 3 * 366 + 1
ON_TIME = timedelta(minutes=60)  # API.md: on time when within 60 minutes of its time
PANEL_DAYS = 7


def window(
    patient: Patient,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
    max_days: int = MAX_WINDOW_DAYS,
) -> tuple[date, date]:
    """The local days asked for; by default the last 30 local days, today included."""
    end = date_to or local_date(now, patient.timezone)
    start = date_from or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if start > end:
        raise ValidationFailed([FieldError(("query", "from"), "is after `to`")])
    if (end - start).days + 1 > max_days:
        raise ValidationFailed([FieldError(("query", "from"), f"the window is longer than {max_days} days")])
    return start, end


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def live(model: Any) -> Any:
    return col(model.entered_in_error_at).is_(None)


@dataclass(frozen=True)
class Schedule:
    """When a regimen is in force and its wall-clock times: all that adherence needs of it."""

    start_date: date
    end_date: date | None
    times: tuple[time, ...]

    @classmethod
    def of(cls, start_date: date, end_date: date | None, schedule: list[dict[str, Any]]) -> Schedule:
        times = []
        for entry in schedule:
            hour, minute = map(int, str(entry["time"]).split(":"))
            times.append(time(hour, minute))
        return cls(start_date, end_date, tuple(times))

    @classmethod
    def of_text(cls, start_date: date, end_date: date | None, schedule: str) -> Schedule:
        """From the schedule's stored JSON text (as read by `SCHEDULE_TEXT`)."""
        return cls(start_date, end_date, _times_of(schedule))

    def covers(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


@functools.lru_cache(maxsize=4096)
def _times_of(schedule: str) -> tuple[time, ...]:
    """Schedules repeat across patients (a clinic prescribes a few): each distinct text is parsed once."""
    return Schedule.of(date.min, None, json.loads(schedule)).times


# A regimen's schedule as its JSON text: `Schedule.of_text` parses each distinct one once per process.
SCHEDULE_TEXT = cast(col(Regimen.schedule), String)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_MICROSECOND = timedelta(microseconds=1)
_DAY_MICROS = 86_400_000_000
_ON_TIME_MICROS = ON_TIME // _MICROSECOND


def micros(instant: datetime) -> int:
    """An instant as whole microseconds since the epoch: exact, and cheap to compare."""
    return (instant - _EPOCH) // _MICROSECOND


class Clock:
    """A patient's wall clock at `now`: whether a slot's time has come, and the instants of a day's
    slots, fast on days with one UTC offset throughout (nearly all) and exact (zone-aware instants,
    DST-safe) on the days of a clock change."""

    def __init__(self, timezone: str, now: datetime) -> None:
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.now = now
        self.now_micros = micros(now)
        local_now = now.astimezone(self.zone)
        self.today = local_now.date()
        self.wall_now = local_now.time()
        self._offsets: dict[date, timedelta | None] = {}
        # No clock change since yesterday began: a wall-clock time of yesterday or today has come iff
        # it is not after the wall clock now (one offset throughout, so the order is the instants').
        self.steady = self._offset(self.today - timedelta(days=1)) == local_now.utcoffset()

    def _offset(self, day: date) -> timedelta | None:
        """The UTC offset at the day's local midnight (before the change, if midnight is skipped)."""
        if day not in self._offsets:
            self._offsets[day] = datetime.combine(day, time.min, tzinfo=self.zone).utcoffset()
        return self._offsets[day]

    def due(self, day: date, times: list[time]) -> int:
        """How many of the day's slot times have come by now."""
        if day > self.today + timedelta(days=1):
            return 0
        if day < self.today - timedelta(days=1):
            return len(times)
        if self.steady and day < self.today:
            return len(times)
        if self.steady and day == self.today:
            return sum(1 for wall_clock in times if wall_clock <= self.wall_now)
        return sum(1 for t in times if local_instant(day, t, self.timezone) <= self.now)

    def counted(self, day: date, times: list[time], doses: int) -> tuple[int, int]:
        """(due, taken) of a day's slots, given the taken doses that count for that day (`slot_day`).

        A slot is missed only once its window (60 minutes after its time, the on-time window) has
        closed: a closed slot is due whether taken or not; a slot whose time has come but whose window
        is still open is due only when a dose is there for it (the doses beyond the closed slots'), so
        at 08:27 an 08:00 dose not yet taken is neither taken nor missed. Counts only: the panel has
        no more than that for its older days, and the summary, the report and the panel share this."""
        closed, come = self.closed_and_come(day, times)
        due = closed + min(come - closed, max(0, doses - closed))
        return due, min(due, doses)

    def closed_and_come(self, day: date, times: list[time]) -> tuple[int, int]:
        """How many of the day's slots have their window closed, and how many their time come."""
        if day > self.today + timedelta(days=1):
            return 0, 0
        if day < self.today - timedelta(days=1):
            return len(times), len(times)  # the last slot's window closed by 01:00 of the next day
        slots = self.slot_micros(day, times)
        closed = sum(1 for at in slots if at + _ON_TIME_MICROS <= self.now_micros)
        return closed, sum(1 for at in slots if at <= self.now_micros)

    def slot_micros(self, day: date, times: list[time]) -> list[int]:
        """The instants of the day's slot times, in microseconds since the epoch."""
        offset = self._offset(day)
        if offset is None or offset != self._offset(day + timedelta(days=1)):
            return [micros(local_instant(day, t, self.timezone)) for t in times]
        # One offset all day: the instant is the wall clock less the offset.
        midnight = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_MICROS - offset // _MICROSECOND
        return [midnight + (t.hour * 3600 + t.minute * 60 + t.second) * 1_000_000 for t in times]


def times_on(schedules: list[Schedule], day: date) -> list[time]:
    """The wall-clock times of the regimens in force on a day."""
    return [wall_clock for schedule in schedules if schedule.covers(day) for wall_clock in schedule.times]


def slot_day(taken_on: date, scheduled_for: datetime | None, zone: ZoneInfo) -> date:
    """The local day whose schedule a taken dose counts for: the day of the slot it is tagged for
    (`scheduled_for`: a dose at 00:30 for the evening before counts for that evening), else the day it
    was taken."""
    return scheduled_for.astimezone(zone).date() if scheduled_for is not None else taken_on


@dataclass(frozen=True)
class DayAdherence:
    """One local day of the regimen: the scheduled doses whose time has come, how many of them were
    taken, and how many on time."""

    day: date
    due: int
    taken: int
    on_time: int


def daily_adherence(
    schedules: list[Schedule],
    days: list[date],
    timezone: str,
    now: datetime,
    taken: dict[date, tuple[int, float]],
    taken_at: dict[date, list[datetime]] | None = None,
    tagged: dict[date, list[datetime | None]] | None = None,
) -> list[DayAdherence]:
    """`adherence` day by day (the days with scheduled doses; the report draws them). `taken` and
    `taken_at` are by slot day (`slot_day`), not by the day a dose was taken."""
    clock = Clock(timezone, now)
    near = clock.today - timedelta(days=1)
    found = []
    for day in days:
        if day > clock.today + timedelta(days=1):
            continue
        times = times_on(schedules, day)
        if not times:
            continue
        doses = taken.get(day, (0, 0.0))[0]
        due, got = clock.counted(day, times, doses)
        on_time = 0
        if taken_at is not None and due and doses:
            slots = clock.slot_micros(day, times)
            if day >= near:  # near today: only the slots whose time has come
                slots = [at for at in slots if at <= clock.now_micros]
            tags = [None if at is None else micros(at) for at in tagged.get(day, [])] if tagged else None
            on_time = min(got, _on_time(slots, [micros(at) for at in taken_at.get(day, [])], tags))
        found.append(DayAdherence(day, due, got, on_time))
    return found


def adherence(
    schedules: list[Schedule],
    days: list[date],
    timezone: str,
    now: datetime,
    taken: dict[date, tuple[int, float]],
    taken_at: dict[date, list[datetime]] | None = None,
) -> Adherence:
    """A scheduled dose is taken when a taken dose counts for its local day (one dose for one slot; a
    dose tagged `scheduled_for` a slot counts for that slot's day), and on time when a taken dose is
    within 60 minutes of its time. A slot counts once its window has closed, or earlier when a dose is
    there for it (`Clock.counted`). Instants (zone-aware, DST-safe) are built only for the on-time comparison
    (`taken_at`, when given), on days with taken doses."""
    return total_adherence(
        daily_adherence(schedules, days, timezone, now, taken, taken_at), taken_at is not None
    )


def total_adherence(per_day: list[DayAdherence], with_on_time: bool) -> Adherence:
    scheduled = sum(d.due for d in per_day)
    taken_count = sum(d.taken for d in per_day)
    on_time = sum(d.on_time for d in per_day)
    return Adherence(
        scheduled=scheduled,
        taken=taken_count,
        percent=percent(taken_count, scheduled),
        on_time_percent=percent(on_time, scheduled) if with_on_time else None,
    )


def _on_time(slots: list[int], doses: list[int], tags: list[int | None] | None = None) -> int:
    """A dose tagged for a slot (`scheduled_for` within 60 minutes of the slot's time) counts for that
    slot only: on time when taken within 60 minutes of it. Then the other slots in time order, each
    matched to the nearest unused untagged dose within 60 minutes (the earlier dose on a tie)."""
    free = sorted(slots)
    unused = []
    matched = 0
    for n, dose in enumerate(doses):
        tag = tags[n] if tags else None
        own = min(free, key=lambda slot: abs(slot - tag)) if tag is not None and free else None
        if own is None or tag is None or abs(own - tag) > _ON_TIME_MICROS:
            unused.append(dose)
            continue
        free.remove(own)
        matched += abs(dose - own) <= _ON_TIME_MICROS
    unused.sort()
    for slot in free:
        best, best_gap = -1, _ON_TIME_MICROS + 1
        for n, dose in enumerate(unused):
            gap = abs(dose - slot)
            if gap < best_gap:
                best, best_gap = n, gap
        if best >= 0:
            del unused[best]
            matched += 1
    return matched


async def patient_summary(
    session: AsyncSession,
    caller: Caller,
    patient: Patient,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
) -> PatientSummary:
    summary, _ = await summary_by_day(session, caller, patient, date_from, date_to, now)
    return summary


async def summary_by_day(
    session: AsyncSession,
    caller: Caller,
    patient: Patient,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
) -> tuple[PatientSummary, list[DayAdherence]]:
    """The summary, and its adherence day by day (what the printable report draws: the same numbers).

    `patient` comes from access.patient_in_scope: staff in scope, or the patient themself (API.md).
    Nothing in the summary is staff-only: a patient may already list their own regimens, entries and
    flags, and the summary holds only numbers drawn from those (no notes, no names of others).

    Six Core statements over the window's days (indexes on (patient_id, local_date)): the regimens,
    the taken doses (their count and mg per day, and their instants for the on-time comparison), the
    anxiety series, the symptoms, one row of counts (check-in days, open flags), and the flags whose
    evidence happened in the window."""
    start, end = window(patient, date_from, date_to, now)
    days = _days(start, end)
    in_window = {"pid": patient.id, "start": start, "end": end}
    connection = await session.connection()

    regimens = [r for r in (await connection.execute(_REGIMENS, in_window)).all() if _ever_in_force(r)]
    zone = ZoneInfo(patient.timezone)
    # mg by the day a dose was taken; adherence by the day of the slot it counts for (`slot_day`).
    mg_on: dict[date, float] = defaultdict(float)
    taken: dict[date, tuple[int, float]] = {}
    taken_at: dict[date, list[datetime]] = defaultdict(list)
    tagged: dict[date, list[datetime | None]] = defaultdict(list)
    around = {**in_window, "before": start - timedelta(days=1), "after": end + timedelta(days=1)}
    for day, instant, mg, scheduled_for in (await connection.execute(_TAKEN, around)).all():
        if start <= day <= end:
            mg_on[day] += mg
        counts_for = slot_day(day, scheduled_for, zone)
        if start <= counts_for <= end:
            taken[counts_for] = (taken.get(counts_for, (0, 0.0))[0] + 1, 0.0)
            taken_at[counts_for].append(instant)
            tagged[counts_for].append(scheduled_for)

    gad7: list[Gad7Point] = []
    ratings: list[RatingPoint] = []
    for instrument, day, recorded_at, total, band, score in (
        await connection.execute(_ANXIETY, in_window)
    ).all():
        if instrument == "gad7":
            gad7.append(Gad7Point(date=day, recorded_at=utc(recorded_at), total=total or 0, band=band or ""))
        else:
            ratings.append(RatingPoint(date=day, recorded_at=utc(recorded_at), score=score or 0))
    symptoms = [
        SymptomSummary(code=code, reports=reports, days=n_days, max_grade=max_grade, last_grade=last_grade)
        for code, reports, n_days, max_grade, last_grade in (
            await connection.execute(_SYMPTOMS, in_window)
        ).all()
    ]
    counts: Any = (await connection.execute(_COUNTS, in_window)).one()
    check_in_days, on_regimen, urgent, high, routine, baseline_total, baseline_date = counts
    flag_window = {
        "pid": patient.id,
        "since": day_bounds(start, patient.timezone)[0],
        "until": day_bounds(end, patient.timezone)[1],
    }
    flags = [
        FlagInWindow(
            id=flag_id,
            rule=rule,
            severity=severity,
            status=status,
            observed_at=utc(observed_at),
            date=observed_at.astimezone(zone).date(),
        )
        for flag_id, rule, severity, status, observed_at in (
            await connection.execute(_FLAGS_OBSERVED, flag_window)
        ).all()
    ]
    last_regimen = next(
        (r for r in reversed(regimens) if r.start_date <= end and (r.end_date is None or end <= r.end_date)),
        regimens[-1] if regimens else None,
    )
    per_day = daily_adherence(
        [Schedule.of(r.start_date, r.end_date, r.schedule) for r in regimens],
        days,
        patient.timezone,
        now,
        taken,
        taken_at,
        tagged,
    )
    summary = PatientSummary(
        patient_id=patient.id,
        from_date=start,
        to_date=end,
        regimen=regimen_public(last_regimen) if last_regimen else None,
        regimens=[regimen_public(r) for r in regimens],
        adherence=total_adherence(per_day, with_on_time=True),
        daily_mg=[DailyMg(date=day, mg=round(mg_on.get(day, 0.0), 3)) for day in days],
        gad7=Gad7Summary(
            first=gad7[0].total if gad7 else None,
            last=gad7[-1].total if gad7 else None,
            change=gad7[-1].total - gad7[0].total if gad7 else None,
            last_band=gad7[-1].band if gad7 else None,
            series=gad7,
            **from_baseline(baseline_total, baseline_date, gad7[-1].total if gad7 else None),
        ),
        rating=RatingSummary(
            mean=round(sum(r.score for r in ratings) / len(ratings), 2) if ratings else None, series=ratings
        ),
        symptoms=symptoms,
        open_flags=FlagCounts(urgent=urgent, high=high, routine=routine),
        flags=flags,
        check_ins=_check_ins(check_in_days, on_regimen, regimens, days, local_date(now, patient.timezone)),
    )
    return summary, per_day


def from_baseline(total: int | None, day: date | None, last: int | None) -> dict[str, Any]:
    """The treatment baseline (CLINICAL.md 4: the first GAD-7 on or after the start of the patient's
    first regimen, `treatment_baseline`) and the change from it to the window's last GAD-7, with its
    meaning by the MCID (4) and the RCI (6); null when there is no baseline (or no GAD-7 in the window
    to compare with it)."""
    if total is None or day is None:
        return {"baseline": None, "change_from_baseline": None}
    change = None
    if last is not None:
        change = Gad7Change(points=last - total, meaning=gad7_change_meaning(last - total))
    return {"baseline": Gad7Baseline(value=total, date=day), "change_from_baseline": change}


def regimen_days(regimens: list[Any], days: list[date], today: date) -> int:
    """The window's days, up to today, with a regimen in force: what check-ins are counted over."""
    return sum(
        1
        for day in days
        if day <= today
        and any(r.start_date <= day and (r.end_date is None or day <= r.end_date) for r in regimens)
    )


def _check_ins(
    check_in_days: int, on_regimen: int, regimens: list[Any], days: list[date], today: date
) -> CheckInSummary:
    """Check-in days over the days a regimen was in force (the days a check-in was asked for); over
    the window's days when no regimen was in force in it."""
    over = regimen_days(regimens, days, today)
    if over:
        return CheckInSummary(days=check_in_days, percent=percent(on_regimen, over) or 0.0, regimen_days=over)
    return CheckInSummary(
        days=check_in_days, percent=percent(check_in_days, len(days)) or 0.0, regimen_days=0
    )


def _ever_in_force(regimen: Any) -> bool:
    """A regimen replaced before it began (end before start) was never in force."""
    return regimen.end_date is None or regimen.end_date >= regimen.start_date


def _in_window(model: Any) -> Any:
    return and_(
        col(model.patient_id) == bindparam("pid"),
        col(model.local_date).between(bindparam("start"), bindparam("end")),
        live(model),
    )


# Statements are built once, at import: building one costs more than running it (ENGINEERING.md).
_REGIMENS = (
    select(*Regimen.__table__.columns)  # type: ignore[attr-defined]
    .where(
        col(Regimen.patient_id) == bindparam("pid"),
        col(Regimen.start_date) <= bindparam("end"),
        or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= bindparam("start")),
    )
    .order_by(col(Regimen.start_date), col(Regimen.created_at))
)
# The window's taken doses: per day their count and mg are summed in Python from these rows, which the
# on-time comparison needs anyway (a day's doses and slots are a handful).
# A day either side too: a dose taken after midnight may be tagged for the evening before.
_TAKEN = select(col(Dose.local_date), col(Dose.taken_at), col(Dose.dose_mg), col(Dose.scheduled_for)).where(
    col(Dose.patient_id) == bindparam("pid"),
    col(Dose.local_date).between(bindparam("before"), bindparam("after")),
    live(Dose),
    col(Dose.status) == "taken",
)
_ANXIETY = (
    select(
        col(AnxietyScore.instrument),
        col(AnxietyScore.local_date),
        col(AnxietyScore.recorded_at),
        col(AnxietyScore.total),
        col(AnxietyScore.band),
        col(AnxietyScore.score),
    )
    .where(_in_window(AnxietyScore), col(AnxietyScore.instrument).in_(("gad7", "rating")))
    .order_by(col(AnxietyScore.recorded_at), col(AnxietyScore.id))
)
_later = aliased(SymptomReport)
# Per symptom: reports, days, the worst grade, and the grade of the last report (newest first, by
# the index on (patient_id, code, reported_at)).
_SYMPTOMS = (
    select(
        col(SymptomReport.code),
        func.count(),
        func.count(distinct(col(SymptomReport.local_date))),
        func.max(col(SymptomReport.grade)),
        select(col(_later.grade))
        .where(_in_window(_later), col(_later.code) == col(SymptomReport.code))
        .order_by(col(_later.reported_at).desc(), col(_later.id).desc())
        .limit(1)
        .scalar_subquery(),
    )
    .where(_in_window(SymptomReport))
    .group_by(col(SymptomReport.code))
    .order_by(col(SymptomReport.code))
)


def _open_flags(severity: str) -> Any:
    return (
        select(func.count())
        .where(
            col(Flag.patient_id) == bindparam("pid"),
            col(Flag.status) == FlagStatus.open.value,
            col(Flag.severity) == severity,
        )
        .scalar_subquery()
    )


# The flags whose first evidence happened in the window (a half-open range of instants), oldest first.
_FLAGS_OBSERVED = (
    select(col(Flag.id), col(Flag.rule), col(Flag.severity), col(Flag.status), col(Flag.observed_at))
    .where(
        col(Flag.patient_id) == bindparam("pid"),
        col(Flag.observed_at) >= bindparam("since", type_=UTCDateTime()),
        col(Flag.observed_at) < bindparam("until", type_=UTCDateTime()),
    )
    .order_by(col(Flag.observed_at), col(Flag.id))
)


def _in_force_on(day: Any) -> Any:
    """Some regimen of the patient (one ever in force) covers the day."""
    return (
        select(col(Regimen.id))
        .where(
            col(Regimen.patient_id) == bindparam("pid"),
            col(Regimen.start_date) <= day,
            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= day),
            or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= col(Regimen.start_date)),
        )
        .exists()
    )


def _treatment_baseline() -> tuple[Any, Any]:
    """The treatment baseline's total and local date (prescribing.regimens.treatment_baseline) for the
    patient bound as `pid`, as two scalar subqueries of the counts row."""
    return tuple(  # type: ignore[return-value]
        treatment_baseline(bindparam("pid"), column).scalar_subquery()
        for column in (col(AnxietyScore.total), col(AnxietyScore.local_date))
    )


# One row: the days with a check-in in the window (all, and those a regimen was in force), the open
# flags now by severity, and the treatment baseline.
_COUNTS = select(
    select(func.count(distinct(col(CheckIn.local_date)))).where(_in_window(CheckIn)).scalar_subquery(),
    select(func.count(distinct(col(CheckIn.local_date))))
    .where(_in_window(CheckIn), _in_force_on(col(CheckIn.local_date)))
    .scalar_subquery(),
    *(_open_flags(severity) for severity in ("urgent", "high", "routine")),
    *_treatment_baseline(),
)
