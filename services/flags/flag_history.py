"""Loading what the write-time rules need: the new entries and just enough of the history around them.

Every query is bounded by the new entries' dates (a few days, 14 at most), so the cost does not grow
with the length of the patient's history. Entered-in-error entries are never loaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    CompoundSelect,
    Select,
    String,
    and_,
    bindparam,
    cast,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from services.clinical.rules import (
    DRESS_WINDOW_DAYS,
    WORSENING_WINDOW,
    AbovePrescribed,
    CheckInObs,
    DoseObs,
    Gad7Obs,
    Prescribed,
    Snapshot,
    SymptomObs,
)
from services.localtime import utc
from services.prescribing.regimens import InForce, RegimensInForce, daily_mg, in_force_on, treatment_baseline
from services.settings import Settings


def check_in_obs(row: Any) -> CheckInObs:
    return CheckInObs(row.id, row.local_date, dict(row.red_flags))


def symptom_obs(row: Any) -> SymptomObs:
    """A stored report (a row of the model or of `_SYMPTOM_COLUMNS`) as the rules see it."""
    return SymptomObs(
        row.id,
        row.code,
        row.local_date,
        row.reported_at,
        row.grade,
        row.severity,
        row.present,
        row.check_in_id,
    )


# The doses a patient had taken on a local day before this request's entries, by day.
TakenBefore = dict[date, list[DoseObs]]


async def read_dose_day(
    session: AsyncSession,
    patient_id: uuid.UUID,
    day: date,
    regimens: RegimensInForce,
    taken_before: TakenBefore,
) -> None:
    """Before a dose is inserted, in one statement: the regimen in force on its day (the dose's default
    medication, the dose rule's maximum) and the doses already taken that day (the rule's total)."""
    rows = await session.execute(_DAY_DOSES_AND_REGIMEN, {"patient_id": patient_id, "day": day})
    remember_dose_day(rows, patient_id, day, regimens, taken_before)


def remember_dose_day(
    rows: Iterable[Any],
    patient_id: uuid.UUID,
    day: date,
    regimens: RegimensInForce,
    taken_before: TakenBefore,
) -> None:
    """Keeps a dose day's `part` rows (a "regimen" row, "dose" rows: `day_doses`), ignoring others."""
    in_force = None
    taken = taken_before.setdefault(day, [])
    for row in rows:
        if row.part == "dose":
            taken.append(DoseObs(row.id, day, row.mg))
        elif row.part == "regimen":
            in_force = InForce(
                row.medication, row.mg, daily_mg(row.schedule), row.override_reason is not None
            )
    regimens.remember(patient_id, day, in_force)


@dataclass(frozen=True)
class RuleWindows:
    """The stretches of history the new entries' rules read, known from the new entries alone."""

    # Check-ins within 3 days of the new check-ins and rashes (dress), and rashes within 3 days of those.
    nearby: tuple[date, date] | None
    rash: tuple[date, date] | None
    # The new reports' terms, over their windows from the earliest of them (worsening, persistent).
    codes: set[str]
    earliest: datetime | None


def rule_windows(settings: Settings, check_ins: list[Any], symptoms: list[Any]) -> RuleWindows:
    dress_days = [c.local_date for c in check_ins] + [s.local_date for s in symptoms if s.code == "rash"]
    nearby = rash = None
    if dress_days:
        # Fevers within 3 days of the new entries, and rashes within 3 days of those fevers: a new
        # swollen-glands answer is "without a rash" only if no rash is near the fever it pairs with.
        low = min(dress_days) - timedelta(days=DRESS_WINDOW_DAYS)
        high = max(dress_days) + timedelta(days=DRESS_WINDOW_DAYS)
        nearby = (low, high)
        rash = (low - timedelta(days=DRESS_WINDOW_DAYS), high + timedelta(days=DRESS_WINDOW_DAYS))
    window = max(WORSENING_WINDOW, timedelta(days=settings.persistent_symptom_window_days))
    earliest = min(s.reported_at for s in symptoms) - window if symptoms else None
    return RuleWindows(nearby, rash, {s.code for s in symptoms}, earliest)


@dataclass(frozen=True)
class RuleReads:
    """The history the rules read, read already by the statement that wrote the new entries (a check-in
    on PostgreSQL: services/entries/check_in_statement.py), in the snapshot before they were written:
    rows of `_NEARBY_CHECK_INS` in `RuleWindows.nearby`, of `_SYMPTOM_COLUMNS` in `RuleWindows`, and per
    new GAD-7 its "previous" and "baseline" rows (the baseline the new GAD-7 itself when it is)."""

    nearby_check_ins: list[Any]
    symptoms: list[Any]
    gad7: dict[uuid.UUID, list[Any]]


async def snapshot_for(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    new_rows: list[Any],
    regimens: RegimensInForce | None = None,
    taken_before: TakenBefore | None = None,
    reads: RuleReads | None = None,
) -> Snapshot:
    """Only what the new entries' rules need. A dose's day was read before its INSERT when it was
    recorded alone (`read_dose_day`); a batch's days are read here, two statements for all of them.
    `reads`: the history read already (no statement here for it)."""
    regimens = regimens if regimens is not None else RegimensInForce()
    taken_before = taken_before or {}
    # The entries' tables by name: a row may be the model's object or its plain row (entries.rows).
    tables: dict[str | None, list[Any]] = {}
    for row in new_rows:
        tables.setdefault(getattr(row, "__tablename__", None), []).append(row)
    check_ins = tables.get(CheckIn.__tablename__, [])
    symptoms = tables.get(SymptomReport.__tablename__, [])
    gad7s = [r for r in tables.get(AnxietyScore.__tablename__, []) if r.instrument == "gad7"]
    doses = [r for r in tables.get(Dose.__tablename__, []) if r.status == "taken"]
    new_ids = {r.id for r in new_rows}
    snapshot = Snapshot(
        takes_opioids_or_benzodiazepines=patient.takes_opioids_or_benzodiazepines,
        takes_other_cns_depressants=patient.takes_other_cns_depressants,
        has_lung_disease=patient.has_lung_disease,
        birth_year=patient.birth_year,
        creatinine_clearance_ml_min=patient.creatinine_clearance_ml_min,
        new_check_ins=[check_in_obs(r) for r in check_ins],
        new_symptoms=[symptom_obs(r) for r in symptoms],
        new_gad7=[Gad7Obs(r.id, r.recorded_at, r.total or 0) for r in gad7s],
        new_doses=[DoseObs(r.id, r.local_date, r.dose_mg) for r in doses],
        above_prescribed=above_prescribed_limits(settings),
    )
    windows = rule_windows(settings, check_ins, symptoms)
    if windows.nearby is not None:
        nearby: Iterable[Any] = (
            reads.nearby_check_ins
            if reads is not None
            else await session.execute(
                _NEARBY_CHECK_INS,
                {"patient_id": patient.id, "low": windows.nearby[0], "high": windows.nearby[1]},
            )
        )
        snapshot.nearby_check_ins.extend(
            CheckInObs(r.id, r.local_date, dict(r.red_flags)) for r in nearby if r.id not in new_ids
        )
    # Rashes near those days (dress) and the new reports' terms over their windows (worsening,
    # persistent) in one query, told apart here.
    codes, earliest = windows.codes, windows.earliest
    low, high = windows.rash if windows.rash is not None else (None, None)
    wanted = []
    if low is not None and high is not None:
        wanted.append(
            and_(col(SymptomReport.code) == "rash", col(SymptomReport.local_date).between(low, high))
        )
    if earliest is not None:
        wanted.append(and_(col(SymptomReport.code).in_(codes), col(SymptomReport.reported_at) >= earliest))
    if wanted:
        reports: Iterable[Any] = (
            reads.symptoms
            if reads is not None
            else await session.execute(
                _SYMPTOM_COLUMNS.where(
                    col(SymptomReport.patient_id) == patient.id,
                    col(SymptomReport.entered_in_error_at).is_(None),
                    or_(*wanted),
                )
            )
        )
        for r in reports:
            if r.id in new_ids:
                continue
            seen = symptom_obs(r)
            if low is not None and high is not None and r.code == "rash" and low <= r.local_date <= high:
                snapshot.nearby_symptoms.append(seen)
            if earliest is not None and r.code in codes and utc(r.reported_at) >= earliest:
                snapshot.earlier_symptoms.append(seen)
    baseline: Gad7Obs | None = None
    for gad7 in gad7s:
        # The GAD-7 before this one and the treatment baseline, in one statement: both walk the
        # (patient, instrument, recorded_at) index and stop at their first match (the baseline's walk
        # passes only the GAD-7s from before treatment). The new ones are stored already, so a new
        # GAD-7 can be the baseline itself.
        params = {"patient_id": patient.id, "before": gad7.recorded_at, "id": gad7.id}
        found_rows: Iterable[Any] = (
            reads.gad7.get(gad7.id, [])
            if reads is not None
            else await session.execute(_PREVIOUS_GAD7_AND_BASELINE, params)
        )
        for found in found_rows:
            score = Gad7Obs(found.id, found.recorded_at, found.total or 0)
            if found.part == "previous":
                snapshot.previous_gad7[gad7.id] = score
            else:
                baseline = score
    if baseline is not None:
        snapshot = replace(snapshot, treatment_baseline=baseline)
    days = sorted({d.local_date for d in doses})
    for day in days:
        if day in taken_before:
            earlier = [d for d in taken_before[day] if d.id not in new_ids]
            snapshot.doses_on_days[day] = earlier + [d for d in snapshot.new_doses if d.local_date == day]
    if unread := [day for day in days if day not in taken_before]:
        # A batch's days: the regimens of the days not known yet, then every day's taken doses.
        await regimens.load(session, patient.id, unread)
        taken = await session.execute(_TAKEN_ON_DAYS, {"patient_id": patient.id, "days": unread})
        for dose_id, on, mg in taken:
            snapshot.doses_on_days.setdefault(on, []).append(DoseObs(dose_id, on, mg))
    for day in days:
        snapshot.doses_on_days.setdefault(day, [])
        snapshot.prescribed_on_days[day] = prescribed(regimens.known(patient.id, day))
    await _days_around_above_prescribed(session, patient.id, snapshot, regimens)
    return snapshot


def prescribed(regimen: InForce | None) -> Prescribed | None:
    """What the dose rules read of the regimen in force on a day."""
    if regimen is None:
        return None
    return Prescribed(regimen.daily_mg, regimen.max_daily_mg, regimen.override)


def above_prescribed_limits(settings: Settings) -> AbovePrescribed:
    return AbovePrescribed(
        settings.above_prescribed_percent,
        settings.above_prescribed_min_days,
        settings.above_prescribed_window_days,
    )


async def _days_around_above_prescribed(
    session: AsyncSession, patient_id: uuid.UUID, snapshot: Snapshot, regimens: RegimensInForce
) -> None:
    """above_prescribed counts the days above the prescribed total in the 7 local days (settings) around a
    new dose's day: only when that day is itself above are the others read, the doses of the days not
    read yet in one bounded query and their regimens in one more (none when known). Called after the
    dose's day is locked and read (dose_day_lock), like every read of a day's total."""
    limits = snapshot.above_prescribed
    if limits is None:
        return
    above = [
        day
        for day, doses in snapshot.doses_on_days.items()
        if limits.over(sum(d.dose_mg for d in doses), snapshot.prescribed_on_days.get(day))
    ]
    if not above:
        return
    reach = timedelta(days=limits.window_days - 1)
    first, last = min(above) - reach, max(above) + reach
    around = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    unread = [day for day in around if day not in snapshot.doses_on_days]
    if not unread:
        return
    taken = await session.execute(
        _TAKEN_BETWEEN, {"patient_id": patient_id, "first": unread[0], "last": unread[-1]}
    )
    new_days = set(unread)  # the days known already (the new doses' own) are not read twice
    for dose_id, on, mg in taken:
        if on in new_days:
            snapshot.doses_on_days.setdefault(on, []).append(DoseObs(dose_id, on, mg))
    await regimens.load(session, patient_id, unread)
    for day in unread:
        snapshot.doses_on_days.setdefault(day, [])
        snapshot.prescribed_on_days[day] = prescribed(regimens.known(patient_id, day))


def no_schedule() -> Any:
    """The `schedule` column of a row that is not the regimen's, typed so the UNION's JSON is read."""
    return cast(null(), JSON)


def no_override() -> Any:
    return cast(null(), String)


def day_doses() -> Select[*tuple[Any, ...]]:
    """The doses taken on a local day (`patient_id`, `day`), as rows of a UNION with the regimen
    (part, id, mg, medication, schedule, override_reason)."""
    return select(
        literal_column("'dose'", String).label("part"),
        col(Dose.id).label("id"),
        col(Dose.dose_mg).label("mg"),
        col(Dose.medication).label("medication"),
        no_schedule().label("schedule"),
        no_override().label("override_reason"),
    ).where(
        col(Dose.patient_id) == bindparam("patient_id"),
        col(Dose.local_date) == bindparam("day"),
        col(Dose.status) == "taken",
        col(Dose.entered_in_error_at).is_(None),
    )


def _day_doses_and_regimen() -> CompoundSelect[*tuple[Any, ...]]:
    regimen = in_force_on(bindparam("patient_id"), bindparam("day")).subquery()
    return union_all(
        day_doses(),
        select(
            literal_column("'regimen'", String),
            regimen.c.id,
            regimen.c.max_daily_mg,
            regimen.c.medication,
            regimen.c.schedule,
            regimen.c.override_reason,
        ),
    )


_NEARBY_CHECK_INS = select(col(CheckIn.id), col(CheckIn.local_date), col(CheckIn.red_flags)).where(
    col(CheckIn.patient_id) == bindparam("patient_id"),
    col(CheckIn.local_date).between(bindparam("low"), bindparam("high")),
    col(CheckIn.entered_in_error_at).is_(None),
)
_SYMPTOM_COLUMNS = select(
    col(SymptomReport.id),
    col(SymptomReport.code),
    col(SymptomReport.local_date),
    col(SymptomReport.reported_at),
    col(SymptomReport.grade),
    col(SymptomReport.severity),
    col(SymptomReport.present),
    col(SymptomReport.check_in_id),
)
_PREVIOUS_GAD7 = (
    select(col(AnxietyScore.id), col(AnxietyScore.recorded_at), col(AnxietyScore.total))
    .where(
        col(AnxietyScore.patient_id) == bindparam("patient_id"),
        col(AnxietyScore.instrument) == "gad7",
        col(AnxietyScore.recorded_at) < bindparam("before"),
        col(AnxietyScore.entered_in_error_at).is_(None),
        col(AnxietyScore.id) != bindparam("id"),
    )
    .order_by(col(AnxietyScore.recorded_at).desc())
    .limit(1)
)
# CLINICAL.md 4, treatment baseline: the first GAD-7 on or after the start of the patient's first
# regimen (a regimen replaced before it began, ending before its start, was never in force).
_TREATMENT_BASELINE = treatment_baseline(
    bindparam("patient_id"), col(AnxietyScore.id), col(AnxietyScore.recorded_at), col(AnxietyScore.total)
)


def _previous_gad7_and_baseline() -> CompoundSelect[str, uuid.UUID, datetime, int | None]:
    previous, baseline = _PREVIOUS_GAD7.subquery(), _TREATMENT_BASELINE.subquery()
    return union_all(
        *(
            select(literal_column(f"'{part}'", String).label("part"), q.c.id, q.c.recorded_at, q.c.total)
            for part, q in (("previous", previous), ("baseline", baseline))
        )
    )


_PREVIOUS_GAD7_AND_BASELINE = _previous_gad7_and_baseline()
# Built once: a plain dose's rules need these and nothing else.
_TAKEN_ON_DAYS = select(col(Dose.id), col(Dose.local_date), col(Dose.dose_mg)).where(
    col(Dose.patient_id) == bindparam("patient_id"),
    col(Dose.local_date).in_(bindparam("days", expanding=True)),
    col(Dose.status) == "taken",
    col(Dose.entered_in_error_at).is_(None),
)
_DAY_DOSES_AND_REGIMEN = _day_doses_and_regimen()
# The doses taken over a stretch of local days (above_prescribed's days around a day above it).
_TAKEN_BETWEEN = select(col(Dose.id), col(Dose.local_date), col(Dose.dose_mg)).where(
    col(Dose.patient_id) == bindparam("patient_id"),
    col(Dose.local_date).between(bindparam("first"), bindparam("last")),
    col(Dose.status) == "taken",
    col(Dose.entered_in_error_at).is_(None),
)
# The reads above, for a statement that runs them itself beside its inserts (a check-in on PostgreSQL:
# services/entries/check_in_statement.py), with the same parameters.
NEARBY_CHECK_INS = _NEARBY_CHECK_INS
SYMPTOM_COLUMNS = _SYMPTOM_COLUMNS
PREVIOUS_GAD7 = _PREVIOUS_GAD7
TREATMENT_BASELINE = _TREATMENT_BASELINE
