"""What the printable report shows: the patient's summary (summaries.patient_summary, the very numbers
the JSON summary answers) plus what only the page needs, day by day: scheduled, missed and late doses,
each side effect's grade, and the flags with their times and sources.

The per-day dose counts are the summary's own adherence day by day (summaries.summary_by_day), so they
add up to the summary's adherence exactly; nothing here recomputes a number the summary already gives.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import Flag, FlagStatus, Severity
from models.regimens import Regimen, RegimenPublic
from models.summaries import PatientSummary
from services.accounts.access import Caller
from services.clinical.gad7 import gad7_change_meaning
from services.clinical.rules import Prescribed, daily_limits, label_max_daily_mg
from services.localtime import day_bounds, local_date, utc
from services.prescribing.regimens import regimen_in_force
from services.prescribing.regimens import to_public as regimen_public
from services.reports import summaries

DEFAULT_REPORT_DAYS = 90  # API.md: the report's default window, the last 90 local days


@dataclass(frozen=True)
class DoseDay:
    """One local day of the regimen: what was scheduled (every slot of the day), what is due (slots
    whose time has come, as adherence counts them), and how the due ones went."""

    day: date
    scheduled_mg: float
    max_mg: float | None
    taken_mg: float
    due: int
    taken: int
    on_time: int

    @property
    def missed(self) -> int:
        return self.due - self.taken

    @property
    def late(self) -> int:
        """Taken on its day but not within 60 minutes of a slot's time."""
        return self.taken - self.on_time


@dataclass(frozen=True)
class SymptomDay:
    code: str
    day: date
    reports: int
    grade: int | None  # the day's worst composite grade; None for presence-only terms
    present: bool


@dataclass(frozen=True)
class FlagSource:
    kind: str
    day: date | None
    retracted: bool


@dataclass(frozen=True)
class FlagMark:
    id: uuid.UUID
    rule: str
    severity: Severity
    status: FlagStatus
    reason: str
    symptom_code: str | None
    observed_at: datetime  # when its first evidence happened, in the patient's zone
    sources: tuple[FlagSource, ...]

    @property
    def observed_on(self) -> date:
        return self.observed_at.date()


@dataclass(frozen=True)
class GadChange:
    first_date: date
    last_date: date
    first: int
    last: int
    change: int
    meaning: str | None  # None with one GAD-7 only: there is no change to read


@dataclass(frozen=True)
class Fact:
    """A fact of the patient's record that the rules read, as recorded or "not recorded"."""

    key: str
    label: str
    value: str


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def _clearance(value: Any) -> str:
    return f"{value:g} mL/min" if value is not None else "not recorded"


def _plain(value: Any) -> str:
    return str(value) if value is not None else "not recorded"


# The patient's facts the rules and the label's maximums read, in the order shown: (key, label, the
# Patient attribute, how it reads). One more fact (takes_other_cns_depressants, has_lung_disease) is one
# more line here.
PATIENT_FACTS: tuple[tuple[str, str, str, Any], ...] = (
    ("birth-year", "Born", "birth_year", _plain),
    (
        "opioids-benzodiazepines",
        "Takes opioids or benzodiazepines",
        "takes_opioids_or_benzodiazepines",
        _yes_no,
    ),
    ("other-cns-depressants", "Takes other sedating medicines", "takes_other_cns_depressants", _yes_no),
    ("lung-disease", "Has lung disease", "has_lung_disease", _yes_no),
    ("creatinine-clearance", "Creatinine clearance", "creatinine_clearance_ml_min", _clearance),
)


def patient_facts(patient: Patient) -> list[Fact]:
    return [
        Fact(key, label, show(getattr(patient, attribute, None)))
        for key, label, attribute, show in PATIENT_FACTS
    ]


@dataclass(frozen=True)
class Baseline:
    """The change from the treatment baseline to the window's last GAD-7 (CLINICAL.md 4)."""

    value: int
    on: date
    last: int | None
    last_date: date | None
    change: int | None
    meaning: str | None


@dataclass(frozen=True)
class ReportData:
    summary: PatientSummary
    timezone: str
    birth_year: int | None
    generated_at: datetime  # in the patient's zone
    days: list[date]
    doses: list[DoseDay]
    symptoms: dict[str, list[SymptomDay]]  # by code, in the summary's order
    flags: list[FlagMark]  # raised in the window, or still active (open or acknowledged); oldest first
    gad7: GadChange | None
    label_max_mg: int
    facts: list[Fact] = field(default_factory=list)
    clearance_on_record: bool = False
    today: date | None = None
    today_regimen: RegimenPublic | None = None
    baseline: Baseline | None = None

    @property
    def open_flags(self) -> list[FlagMark]:
        rank = {Severity.urgent: 0, Severity.high: 1, Severity.routine: 2}
        found = [f for f in self.flags if f.status == FlagStatus.open]
        return sorted(found, key=lambda f: (rank[f.severity], f.observed_at))

    @property
    def headline_flags(self) -> list[FlagMark]:
        """The headline's flags: every urgent or high flag still active (unacknowledged first, then
        acknowledged), then the routine ones not yet acknowledged; most severe first, oldest first."""
        rank = {Severity.urgent: 0, Severity.high: 1, Severity.routine: 2}
        found = [
            f
            for f in self.flags
            if f.status == FlagStatus.open
            or (f.status == FlagStatus.acknowledged and f.severity != Severity.routine)
        ]
        return sorted(found, key=lambda f: (rank[f.severity], f.status != FlagStatus.open, f.observed_at))

    @property
    def regimen_days(self) -> int:
        """The window's days up to today with a regimen in force (adherence and check-ins are over these)."""
        return self.summary.check_ins.regimen_days

    @property
    def regimen_changes(self) -> list[RegimenPublic]:
        """Regimens that began or ended inside the window (not the one merely in force throughout)."""
        start, end = self.summary.from_date, self.summary.to_date
        return [
            r
            for r in self.summary.regimens
            if start < r.start_date <= end or (r.end_date is not None and start <= r.end_date < end)
        ]


def _first(model: Any, column: Any) -> Any:
    """The earliest day of an entry not entered in error, or of a regimen ever in force."""
    if model is Regimen:
        counted = or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= col(Regimen.start_date))
    else:
        counted = summaries.live(model)
    return (
        select(func.min(column)).where(col(model.patient_id) == bindparam("pid"), counted).scalar_subquery()
    )


# The patient's first regimen start and first entry day: where the report's default window may start.
# One row of index walks (each table's index on (patient_id, local_date)).
_FIRST_DAYS = select(
    _first(Regimen, col(Regimen.start_date)),
    *(_first(model, col(model.local_date)) for model in (Dose, AnxietyScore, SymptomReport, CheckIn)),
)


async def report_window(
    session: AsyncSession, patient: Patient, date_from: date | None, date_to: date | None, now: datetime
) -> tuple[date, date]:
    """The report's local days: by default the last 90, today included, starting no earlier than the
    patient's first regimen or entry (a patient who began 28 days ago gets 29 days, not 61 empty ones);
    checked as the summary's are."""
    end = date_to or local_date(now, patient.timezone)
    start = date_from or end - timedelta(days=DEFAULT_REPORT_DAYS - 1)
    if date_from is None:
        firsts = [d for d in (await session.execute(_FIRST_DAYS, {"pid": patient.id})).one() if d is not None]
        if firsts:
            start = min(max(start, min(firsts)), end)
    return summaries.window(patient, start, end, now)


async def report_data(
    session: AsyncSession,
    caller: Caller,
    patient: Patient,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
) -> ReportData:
    start, end = await report_window(session, patient, date_from, date_to, now)
    summary, per_day = await summaries.summary_by_day(session, caller, patient, start, end, now)
    params = {"pid": patient.id, "start": start, "end": end}
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    label_max = label_max_daily_mg(patient.creatinine_clearance_ml_min)
    today = local_date(now, patient.timezone)
    return ReportData(
        summary=summary,
        timezone=patient.timezone,
        birth_year=patient.birth_year,
        generated_at=now.astimezone(ZoneInfo(patient.timezone)),
        days=days,
        doses=_dose_days(summary, per_day, days, patient.creatinine_clearance_ml_min),
        symptoms=await _symptom_days(session, summary, params),
        flags=await _flags(session, patient, start, end),
        gad7=_gad7_change(summary),
        label_max_mg=label_max,
        facts=patient_facts(patient),
        clearance_on_record=patient.creatinine_clearance_ml_min is not None,
        today=today,
        today_regimen=await _regimen_today(session, patient, summary, today),
        baseline=_baseline(summary),
    )


async def _regimen_today(
    session: AsyncSession, patient: Patient, summary: PatientSummary, today: date
) -> RegimenPublic | None:
    """The regimen in force today: from the summary's when the window reaches today (no statement)."""
    if summary.from_date <= today <= summary.to_date:
        in_force = [
            r
            for r in summary.regimens
            if r.start_date <= today and (r.end_date is None or today <= r.end_date)
        ]
        return in_force[-1] if in_force else None
    found = await regimen_in_force(session, patient.id, today)
    return regimen_public(found) if found is not None else None


def _baseline(summary: PatientSummary) -> Baseline | None:
    gad7 = summary.gad7
    if gad7.baseline is None:
        return None
    last = gad7.series[-1] if gad7.series else None
    change = gad7.change_from_baseline
    return Baseline(
        value=gad7.baseline.value,
        on=gad7.baseline.date,
        last=last.total if last else None,
        last_date=last.date if last else None,
        change=change.points if change else None,
        meaning=change.meaning if change else None,
    )


def _in_window(model: Any) -> Any:
    return (
        col(model.patient_id) == bindparam("pid"),
        col(model.local_date).between(bindparam("start"), bindparam("end")),
        summaries.live(model),
    )


def _dose_days(
    summary: PatientSummary,
    per_day: list[summaries.DayAdherence],
    days: list[date],
    creatinine_clearance_ml_min: float | None,
) -> list[DoseDay]:
    """Each day's doses, from the summary's own day-by-day adherence: they add up to its numbers."""
    mg = {point.date: point.mg for point in summary.daily_mg}
    counted = {d.day: d for d in per_day}
    regimens = summary.regimens
    found = []
    for day in days:
        in_force = [r for r in regimens if r.start_date <= day and (r.end_date is None or day <= r.end_date)]
        if not in_force:  # nothing scheduled: nothing due, nothing late
            found.append(DoseDay(day, 0.0, None, mg.get(day, 0.0), 0, 0, 0))
            continue
        today = counted.get(day, summaries.DayAdherence(day, 0, 0, 0))  # none due yet
        # The dose_above_max rule's ceiling: the lowest of its limits (under an override, the regimen's
        # own in place of the label maximum the prescriber overrode).
        ceilings = [
            limit
            for r in in_force
            for limit, _ in daily_limits(
                creatinine_clearance_ml_min,
                Prescribed(sum(s.dose_mg for s in r.schedule), r.max_daily_mg, r.override_reason is not None),
            )
        ]
        found.append(
            DoseDay(
                day=day,
                scheduled_mg=sum(s.dose_mg for r in in_force for s in r.schedule),
                max_mg=min(ceilings),
                taken_mg=mg.get(day, 0.0),
                due=today.due,
                taken=today.taken,
                on_time=today.on_time,
            )
        )
    return found


_SYMPTOM_DAYS = (
    select(
        col(SymptomReport.code),
        col(SymptomReport.local_date),
        func.count(),
        func.max(col(SymptomReport.grade)),
        func.max(col(SymptomReport.present)),
    )
    .where(*_in_window(SymptomReport))
    .group_by(col(SymptomReport.code), col(SymptomReport.local_date))
    .order_by(col(SymptomReport.code), col(SymptomReport.local_date))
)


async def _symptom_days(
    session: AsyncSession, summary: PatientSummary, params: dict[str, Any]
) -> dict[str, list[SymptomDay]]:
    found: dict[str, list[SymptomDay]] = {s.code: [] for s in summary.symptoms}
    for code, day, reports, grade, present in await session.execute(_SYMPTOM_DAYS, params):
        found.setdefault(code, []).append(SymptomDay(code, day, int(reports), grade, bool(present)))
    return found


def _gad7_change(summary: PatientSummary) -> GadChange | None:
    series = summary.gad7.series
    if not series or summary.gad7.change is None:
        return None
    first, last = series[0], series[-1]
    return GadChange(
        first_date=first.date,
        last_date=last.date,
        first=first.total,
        last=last.total,
        change=summary.gad7.change,
        meaning=gad7_change_meaning(summary.gad7.change) if len(series) > 1 else None,
    )


_FLAGS = (
    select(Flag)
    .where(
        col(Flag.patient_id) == bindparam("pid"),
        or_(
            col(Flag.status).in_((FlagStatus.open.value, FlagStatus.acknowledged.value)),
            col(Flag.observed_at).between(bindparam("since"), bindparam("until")),
        ),
    )
    .order_by(col(Flag.observed_at), col(Flag.id))
)

# Where a flag's evidence lives, and the local day each kind of entry is on.
_EVIDENCE_DAY: dict[str, Any] = {
    "check_in": CheckIn,
    "dose": Dose,
    "anxiety": AnxietyScore,
    "symptom": SymptomReport,
}


async def _flags(session: AsyncSession, patient: Patient, start: date, end: date) -> list[FlagMark]:
    since, until = day_bounds(start, patient.timezone)[0], day_bounds(end, patient.timezone)[1]
    rows = await session.execute(_FLAGS, {"pid": patient.id, "since": since, "until": until})
    flags = list(rows.scalars())
    wanted: dict[str, set[uuid.UUID]] = defaultdict(set)
    for flag in flags:
        for item in flag.evidence:
            wanted[item["type"]].add(uuid.UUID(str(item["id"])))
    days: dict[uuid.UUID, date] = {}
    for kind, ids in wanted.items():
        model = _EVIDENCE_DAY.get(kind)
        if model is None:  # a regimen: the time rules' evidence, dated by its start
            statement = select(col(Regimen.id), col(Regimen.start_date))
            statement = statement.where(col(Regimen.patient_id) == patient.id, col(Regimen.id).in_(ids))
        else:
            statement = select(col(model.id), col(model.local_date))
            statement = statement.where(col(model.patient_id) == patient.id, col(model.id).in_(ids))
        for entry_id, day in await session.execute(statement):
            days[entry_id] = day
    zone = ZoneInfo(patient.timezone)
    return [
        FlagMark(
            id=flag.id,
            rule=flag.rule,
            severity=Severity(flag.severity),
            status=FlagStatus(flag.status),
            reason=flag.reason,
            symptom_code=flag.symptom_code,
            observed_at=utc(flag.observed_at).astimezone(zone),
            sources=tuple(
                FlagSource(
                    kind=str(item["type"]),
                    day=days.get(uuid.UUID(str(item["id"]))),
                    retracted=bool(item.get("retracted", False)),
                )
                for item in flag.evidence
            ),
        )
        for flag in flags
    ]
