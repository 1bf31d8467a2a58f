"""The periodic job for rules that depend on time passing, not on a new entry (CLINICAL.md 4):
abrupt_stop and missed_check_ins; and the safety net of the rules that read a day's total: the last 2
local days of each patient with doses there are read again, and a day whose total exceeds a limit gets
dose_above_max, a day above the prescribed total above_prescribed (the write-time rules themselves, so
the same reasons and flags), unless a flag of the rule holds its doses already.

Safe to run twice and on several workers at once: a lapse is identified by its episode (the last dose
or check-in before it), a flag is raised once per episode, and the unique index on active flags makes
concurrent runs meet on one flag.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.accounts import Patient
from models.base import utcnow
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import Flag
from models.regimens import Regimen
from services.clinical.rules import (
    DoseObs,
    Finding,
    Prescribed,
    RegimenObs,
    Snapshot,
    above_prescribed,
    abrupt_stop,
    daily_limits_exceeded,
    dose_above_max,
    missed_check_ins,
)
from services.database import session_scope
from services.flags import lifecycle as flags
from services.flags.flag_history import above_prescribed_limits
from services.localtime import day_bounds, local_date, utc
from services.prescribing.regimens import daily_mg
from services.settings import Settings

BATCH = 200
INTERVAL_SECONDS = 15 * 60


async def evaluate_time_rules(
    factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> int:
    """One pass over every patient with a regimen that may be active. Returns how many flags were
    raised or added to. A transaction per batch keeps locks short."""
    now = now or utcnow()
    # A day of margin either side of any zone's "today".
    horizon = (now - timedelta(days=max(settings.abrupt_stop_days, settings.missed_check_in_days) + 2)).date()
    touched = 0
    after: uuid.UUID | None = None
    while True:
        async with session_scope(factory) as session:
            in_force = or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= horizon)
            # Both sides start after the last batch, so each batch reads its own stretch of the two
            # indexes (without the regimen's bound, every batch rescanned it from the start).
            if after is not None:
                in_force = in_force & (col(Regimen.patient_id) > after)
            statement = (
                select(Patient)
                .where(col(Patient.id).in_(select(col(Regimen.patient_id)).where(in_force)))
                .order_by(col(Patient.id))
                .limit(BATCH)
            )
            if after is not None:
                statement = statement.where(col(Patient.id) > after)
            patients = list((await session.execute(statement)).scalars())
            touched += await _evaluate_batch(session, settings, patients, now)
        if len(patients) < BATCH:
            return touched
        after = patients[-1].id


async def _evaluate_batch(
    session: AsyncSession, settings: Settings, patients: list[Patient], now: datetime
) -> int:
    """The batch's inputs in three queries (not four per patient: the regimens, the last dose and
    check-in, the days anything was recorded on), then the pure rules; then the dose days again (one
    more query, and two more for a batch with a day over a limit or above the prescribed total)."""
    if not patients:
        return 0
    ids = [patient.id for patient in patients]
    regimens: dict[uuid.UUID, list[RegimenObs]] = {}
    regimens_in_force: dict[uuid.UUID, list[Regimen]] = {}
    for r in (await session.execute(select(Regimen).where(col(Regimen.patient_id).in_(ids)))).scalars():
        regimens.setdefault(r.patient_id, []).append(RegimenObs(r.id, r.start_date, r.end_date, r.taper))
        regimens_in_force.setdefault(r.patient_id, []).append(r)
    latest = {row.id: row for row in await session.execute(_LATEST_DOSE_AND_CHECK_IN, {"ids": ids})}
    last_doses = {pid: row.last_dose for pid, row in latest.items() if row.last_dose is not None}
    last_check_ins = {pid: row.last_check_in for pid, row in latest.items() if row.last_check_in is not None}
    # The local days each patient recorded anything on, over abrupt_stop's window in every zone: a
    # patient who took no dose but kept recording has stopped taking, one who recorded nothing has
    # stopped logging (missed_check_ins). One statement for the batch, bounded by the window.
    utc_today = now.astimezone(UTC).date()
    recorded: dict[uuid.UUID, set[date]] = {}
    span = {"first": utc_today - timedelta(days=settings.abrupt_stop_days + 1), "last": utc_today}
    for patient_id, on in await session.execute(_RECORDED_DAYS, {"ids": ids, **span}):
        recorded.setdefault(patient_id, set()).add(on)
    touched = 0
    for patient in patients:
        today = local_date(now, patient.timezone)
        mine = regimens.get(patient.id, [])
        findings = [
            abrupt_stop(
                today,
                mine,
                last_doses.get(patient.id),
                recorded.get(patient.id, set()),
                settings.abrupt_stop_days,
            ),
            missed_check_ins(today, mine, last_check_ins.get(patient.id), settings.missed_check_in_days),
        ]
        # A lapse is complete when the patient's day starts: that is when it is charted.
        day_start = day_bounds(today, patient.timezone)[0]
        observed = flags.Observed(day_start, day_start, day_start)
        for finding in findings:
            if finding is None:
                continue
            if await flags.apply_finding(session, settings, patient, finding, observed) is not None:
                touched += 1
    return touched + await _dose_days_again(session, settings, patients, regimens_in_force, now)


# The local days the safety net reads again: a patient's today and yesterday.
RECHECKED_DAYS = 2


async def _dose_days_again(
    session: AsyncSession,
    settings: Settings,
    patients: list[Patient],
    regimens: dict[uuid.UUID, list[Regimen]],
    now: datetime,
) -> int:
    """dose_above_max and above_prescribed over the batch's last 2 local days: the days' totals in one
    aggregate; only a day over a limit (or above the prescribed total) reads its doses (and, for
    above_prescribed, the days around it), and only a finding whose doses no flag of its rule holds yet is
    applied. The finding is dated as at write time, by the doses no flag held (when they were taken, and
    when they reached the server: a late one says so in the reason, as it would have then)."""
    by_id = {patient.id: patient for patient in patients}
    wanted = {
        patient.id: {local_date(now, patient.timezone) - timedelta(days=n) for n in range(RECHECKED_DAYS)}
        for patient in patients
    }
    limits = above_prescribed_limits(settings)
    # Every zone's today lies within a day of UTC's.
    utc_today = now.astimezone(UTC).date()
    params = {
        "ids": list(by_id),
        "first": utc_today - timedelta(days=RECHECKED_DAYS),
        "last": utc_today + timedelta(days=1),
    }
    over: dict[uuid.UUID, dict[date, Prescribed | None]] = {}
    above: dict[uuid.UUID, set[date]] = {}
    for row in await session.execute(_DAY_TOTALS, params):
        if row.local_date not in wanted[row.patient_id]:
            continue
        patient = by_id[row.patient_id]
        prescribed = _prescribed(regimens.get(row.patient_id, []), row.local_date)
        # A hair of slack: the rule itself decides, from the doses, below.
        if daily_limits_exceeded(row.total + 1e-6, patient.creatinine_clearance_ml_min, prescribed):
            over.setdefault(row.patient_id, {})[row.local_date] = prescribed
        if limits.over(row.total + 1e-6, prescribed):
            above.setdefault(row.patient_id, set()).add(row.local_date)
    if not over and not above:
        return 0
    # The doses of the days over a limit, and of the days around those above the prescribed total.
    reach = timedelta(days=limits.window_days - 1)
    days = {day for found in over.values() for day in found}
    days |= {
        day + timedelta(days=n) for found in above.values() for day in found for n in range(-reach.days, 1)
    }
    doses: dict[tuple[uuid.UUID, date], list[DoseObs]] = {}
    times: dict[uuid.UUID, tuple[datetime, datetime]] = {}
    for dose_id, patient_id, on, mg, taken_at, created_at in await session.execute(
        _DOSES_ON_DAYS, {"ids": list(over.keys() | above.keys()), "days": sorted(days)}
    ):
        doses.setdefault((patient_id, on), []).append(DoseObs(dose_id, on, mg))
        times[dose_id] = (utc(taken_at), utc(created_at))
    flagged: dict[tuple[uuid.UUID, str], set[str]] = {}
    for patient_id, rule, evidence in await session.execute(
        _DOSE_FLAG_EVIDENCE, {"ids": list(over.keys() | above.keys())}
    ):
        flagged.setdefault((patient_id, rule), set()).update(
            item["id"] for item in evidence if item["type"] == "dose"
        )
    touched: set[uuid.UUID] = set()
    for patient_id in over.keys() | above.keys():
        patient = by_id[patient_id]
        findings: list[Finding] = []
        held = flagged.get((patient_id, "dose_above_max"), set())
        snapshot = Snapshot(creatinine_clearance_ml_min=patient.creatinine_clearance_ml_min)
        for on, prescribed in over.get(patient_id, {}).items():
            day_doses = doses.get((patient_id, on), [])
            if {str(d.id) for d in day_doses} <= held:
                continue  # flagged already (at write time, or by an earlier pass), whatever became of it
            snapshot.new_doses.extend(day_doses)
            snapshot.doses_on_days[on] = day_doses
            snapshot.prescribed_on_days[on] = prescribed
        findings += dose_above_max(snapshot)  # two days over: the second attaches to the first's flag
        if patient_id in above:
            around = sorted(
                {on + timedelta(days=n) for on in above[patient_id] for n in range(-reach.days, 1)}
            )
            mine = regimens.get(patient_id, [])
            week = Snapshot(
                new_doses=[d for on in above[patient_id] for d in doses.get((patient_id, on), [])],
                doses_on_days={on: doses.get((patient_id, on), []) for on in around},
                prescribed_on_days={on: _prescribed(mine, on) for on in around},
                above_prescribed=limits,
            )
            already = flagged.get((patient_id, "above_prescribed"), set())
            findings += [
                f for f in above_prescribed(week) if not {str(ref.id) for ref in f.evidence} <= already
            ]
        for finding in findings:
            rule_held = flagged.get((patient_id, finding.rule), set())
            fresh = [times[ref.id] for ref in finding.evidence if str(ref.id) not in rule_held]
            fresh = fresh or [times[ref.id] for ref in finding.evidence]
            taken = [at for at, _ in fresh]
            observed = flags.Observed(min(taken), max(taken), max(arrived for _, arrived in fresh))
            if (flag := await flags.apply_finding(session, settings, patient, finding, observed)) is not None:
                touched.add(flag.id)
    return len(touched)


def _prescribed(regimens: list[Regimen], day: date) -> Prescribed | None:
    """What the regimen in force on the day prescribes: the latest started, as `in_force_on` orders."""
    covering = [r for r in regimens if r.start_date <= day and (r.end_date is None or r.end_date >= day)]
    if not covering:
        return None
    regimen = max(covering, key=lambda r: (r.start_date, utc(r.created_at)))
    return Prescribed(daily_mg(regimen.schedule), regimen.max_daily_mg, regimen.override_reason is not None)


def _latest_date(model: Any, *where: Any) -> Any:
    """A patient's latest local date in `model`, as a correlated subquery: read backwards along the
    (patient_id, local_date) index, one row per patient, however long their history."""
    return (
        select(col(model.local_date))
        .where(col(model.patient_id) == col(Patient.id), col(model.entered_in_error_at).is_(None), *where)
        .order_by(col(model.local_date).desc())
        .limit(1)
        .scalar_subquery()
    )


# The batch's last taken dose and last check-in per patient, in one statement. Built once.
_LATEST_DOSE_AND_CHECK_IN = select(
    col(Patient.id),
    _latest_date(Dose, col(Dose.status) == "taken").label("last_dose"),
    _latest_date(CheckIn).label("last_check_in"),
).where(col(Patient.id).in_(bindparam("ids", expanding=True)))


# The safety net's reads. Built once.
_DAY_TOTALS = (
    select(col(Dose.patient_id), col(Dose.local_date), func.sum(col(Dose.dose_mg)).label("total"))
    .where(
        col(Dose.patient_id).in_(bindparam("ids", expanding=True)),
        col(Dose.local_date).between(bindparam("first"), bindparam("last")),
        col(Dose.status) == "taken",
        col(Dose.entered_in_error_at).is_(None),
    )
    .group_by(col(Dose.patient_id), col(Dose.local_date))
)
_DOSES_ON_DAYS = select(
    col(Dose.id),
    col(Dose.patient_id),
    col(Dose.local_date),
    col(Dose.dose_mg),
    col(Dose.taken_at),
    col(Dose.created_at),
).where(
    col(Dose.patient_id).in_(bindparam("ids", expanding=True)),
    col(Dose.local_date).in_(bindparam("days", expanding=True)),
    col(Dose.status) == "taken",
    col(Dose.entered_in_error_at).is_(None),
)
_DOSE_FLAG_EVIDENCE = select(col(Flag.patient_id), col(Flag.rule), col(Flag.evidence)).where(
    col(Flag.patient_id).in_(bindparam("ids", expanding=True)),
    col(Flag.rule).in_(["dose_above_max", "above_prescribed"]),
)


def _recorded(model: Any) -> Any:
    return select(col(model.patient_id), col(model.local_date)).where(
        col(model.patient_id).in_(bindparam("ids", expanding=True)),
        col(model.local_date).between(bindparam("first"), bindparam("last")),
        col(model.entered_in_error_at).is_(None),
    )


# The local days (in a stretch) each patient of a batch recorded anything on: a check-in, a score, a
# side-effect report, a dose taken or skipped. Each part reads its (patient_id, local_date) index.
_RECORDED_DAYS = union(*(_recorded(model) for model in (CheckIn, AnxietyScore, SymptomReport, Dose)))


async def time_rules_job(factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    return await evaluate_time_rules(factory, settings)
