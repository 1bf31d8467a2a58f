"""The flag rules of CLINICAL.md section 4, as pure functions over a patient's recent history.

Each rule reads a `Snapshot` (the entries just recorded, the history the rule needs, the patient's
facts) and returns the findings it makes. `write_time_rules` lists those evaluated in the transaction
that records an entry; `abrupt_stop` and `missed_check_ins` are evaluated by the worker's periodic job.
Severities, thresholds and advice texts come from CLINICAL.md only; product defaults are settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

from models.flags import Severity
from services.clinical.gad7 import GAD7_MCID, GAD7_RCI

# CLINICAL.md 5: what the patient is told, by the highest severity raised.
ADVICE: dict[Severity, str] = {
    Severity.urgent: (
        "This can be serious. Call your local emergency number now, or go to the nearest emergency "
        "department. Your care team has been alerted."
    ),
    Severity.high: (
        "Your care team has been told and will contact you. If you feel worse, call them or your local "
        "emergency number."
    ),
    Severity.routine: "Your care team will review this.",
}

LABEL_MAX_DAILY_MG = 3600  # CLINICAL.md 4, label table 1
WORSENING_WINDOW = timedelta(days=14)  # CLINICAL.md 4, worsening_symptom (SYMPATHY)
DRESS_WINDOW_DAYS = 3  # CLINICAL.md 4, dress: "in one check-in or within 3 days"
RESPIRATORY_RISK_AGE = 65  # CLINICAL.md 3, respiratory risk: "age 65 or over"
GAD7_SEVERE = 15  # CLINICAL.md 1: the band 15-21 is `severe`
# CLINICAL.md 4, respiratory_depression: the side effects that, at severity >= 3, count in a patient at risk.
RESPIRATORY_SYMPTOMS = ("drowsiness", "shortness_of_breath")
SKIN_TERMS = ("rash", "hives")  # CLINICAL.md 4, skin_reaction


def label_max_daily_mg(creatinine_clearance_ml_min: float | None) -> int:
    """Label maximum by creatinine clearance (CLINICAL.md 4): >= 60: 3600; 30-59: 1400; 15-29: 700;
    < 15: 300; unknown: 3600."""
    if creatinine_clearance_ml_min is None or creatinine_clearance_ml_min >= 60:
        return 3600
    if creatinine_clearance_ml_min >= 30:
        return 1400
    if creatinine_clearance_ml_min >= 15:
        return 700
    return 300


@dataclass(frozen=True)
class Ref:
    """An entry that is evidence for a flag."""

    type: str  # "check_in", "dose", "anxiety", "symptom", "regimen"
    id: uuid.UUID


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    reason: str
    evidence: tuple[Ref, ...]
    symptom_code: str | None = None
    episode: str | None = None


@dataclass(frozen=True)
class CheckInObs:
    id: uuid.UUID
    local_date: date
    red_flags: dict[str, bool | int]

    def yes(self, code: str) -> bool:
        return bool(self.red_flags.get(code))


@dataclass(frozen=True)
class SymptomObs:
    id: uuid.UUID
    code: str
    local_date: date
    reported_at: datetime
    grade: int | None
    severity: int | None
    present: int | None
    # The check-in the report was made in, if any: "the same entry" for skin_reaction.
    check_in_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Gad7Obs:
    id: uuid.UUID
    recorded_at: datetime
    total: int


@dataclass(frozen=True)
class DoseObs:
    id: uuid.UUID
    local_date: date
    dose_mg: float


@dataclass(frozen=True)
class Prescribed:
    """What the regimen in force on a local day prescribes, as the dose rules read it."""

    daily_mg: float  # the schedule's daily total
    max_daily_mg: float | None = None
    # Written with override_reason: the schedule is above a label maximum the prescriber overrode.
    override: bool = False


@dataclass(frozen=True)
class AbovePrescribed:
    """above_prescribed's product defaults (CLINICAL.md 4: 50% over on 2 of the last 7 local days)."""

    percent: float
    min_days: int
    window_days: int

    def over(self, total: float, prescribed: Prescribed | None) -> bool:
        """A day's taken total is `percent` or more above its regimen's scheduled daily total."""
        if prescribed is None or prescribed.daily_mg <= 0:
            return False
        # A hair of slack for float sums: 900 against 600 is exactly 50%, whatever 0.1 + 0.2 does.
        return total * 100 >= prescribed.daily_mg * (100 + self.percent) - 1e-6


@dataclass(frozen=True)
class Snapshot:
    """What the write-time rules see. `new_*` are the entries just recorded; the rest is history the
    loader fetched for them (never entered-in-error entries)."""

    takes_opioids_or_benzodiazepines: bool = False
    takes_other_cns_depressants: bool = False
    has_lung_disease: bool = False
    birth_year: int | None = None
    creatinine_clearance_ml_min: float | None = None
    new_check_ins: list[CheckInObs] = field(default_factory=list)
    new_symptoms: list[SymptomObs] = field(default_factory=list)
    new_gad7: list[Gad7Obs] = field(default_factory=list)
    new_doses: list[DoseObs] = field(default_factory=list)
    # Check-ins and rash reports near the new entries' dates (for dress).
    nearby_check_ins: list[CheckInObs] = field(default_factory=list)
    nearby_symptoms: list[SymptomObs] = field(default_factory=list)
    # Reports of the new reports' terms over the last 14 days before them, and their last 7 local days.
    earlier_symptoms: list[SymptomObs] = field(default_factory=list)
    # The GAD-7 before each new one: {new id: previous}.
    previous_gad7: dict[uuid.UUID, Gad7Obs] = field(default_factory=dict)
    # The treatment baseline (CLINICAL.md 4): the first GAD-7 on or after the start of the patient's
    # first regimen, new entries included; None without a regimen or a GAD-7 since its start.
    treatment_baseline: Gad7Obs | None = None
    # Every taken dose on the local days the new doses fall on, and what the regimen in force prescribed
    # on those days (None: no regimen). above_prescribed also needs the days around a day above its
    # threshold: the loader adds them then (and only then), with their regimens.
    doses_on_days: dict[date, list[DoseObs]] = field(default_factory=dict)
    prescribed_on_days: dict[date, Prescribed | None] = field(default_factory=dict)
    # above_prescribed's product defaults (settings), given by the loader, which reads with them.
    above_prescribed: AbovePrescribed | None = None

    def respiratory_risks(self, on: date) -> list[str]:
        """CLINICAL.md 3, respiratory risk, for an entry of local date `on`, in plain words; empty when
        none. Age is the entry's year minus the birth year (only the year is on record): a patient
        whose 65th birthday falls later that year counts as 65 from January 1st, erring toward
        asking about their breathing rather than missing it."""
        risks = []
        if self.takes_opioids_or_benzodiazepines:
            risks.append("takes an opioid or benzodiazepine")
        if self.takes_other_cns_depressants:
            risks.append("takes another sedating medicine")
        if self.has_lung_disease:
            risks.append("has lung disease")
        if self.birth_year is not None and on.year - self.birth_year >= RESPIRATORY_RISK_AGE:
            risks.append(f"is {RESPIRATORY_RISK_AGE} or over")
        return risks


Rule = Callable[[Snapshot], list[Finding]]
_Obs = TypeVar("_Obs", CheckInObs, SymptomObs)


def _check_in_rule(rule: str, severity: Severity, codes: dict[str, str]) -> Rule:
    """A red-flag answer of yes (or >= 1 on a 0-3 scale) raises the rule; `codes` maps each
    question to the plain-words reason."""

    def evaluate(snapshot: Snapshot) -> list[Finding]:
        findings = []
        for check_in in snapshot.new_check_ins:
            reasons = [reason for code, reason in codes.items() if check_in.yes(code)]
            if reasons:
                evidence = (Ref("check_in", check_in.id),)
                findings.append(Finding(rule, severity, " ".join(reasons), evidence))
        return findings

    evaluate.__name__ = rule
    return evaluate


anaphylaxis = _check_in_rule(
    "anaphylaxis",
    Severity.urgent,
    {
        "face_swelling": "Reported swelling of the face, lips, tongue or throat.",
        "breathing_trouble": "Reported trouble breathing or swallowing.",
    },
)
suicidality = _check_in_rule(
    "suicidality",
    Severity.urgent,
    {"self_harm_thoughts": "Reported thoughts of being better off dead or of self-harm."},
)
seizure = _check_in_rule("seizure", Severity.urgent, {"seizure": "Reported a seizure."})
fall = _check_in_rule("fall", Severity.high, {"fall": "Reported a fall or injury."})


# CLINICAL.md 4, respiratory_depression: the red-flag answers that raise it, in plain words.
_RESPIRATORY_ANSWERS = {
    "hard_to_wake": (
        "Reported being so sleepy they are hard to wake, confused, or with bluish lips or fingers."
    ),
    "slow_breathing": "Reported slow or shallow breathing.",
}


def respiratory_depression(snapshot: Snapshot) -> list[Finding]:
    """hard_to_wake or slow_breathing answered yes; or drowsiness or shortness of breath at severity
    >= 3 in a patient with respiratory risk (CLINICAL.md 3). Without that risk such a report is a
    severe_symptom only."""
    findings = []
    for check_in in snapshot.new_check_ins:
        reasons = [reason for code, reason in _RESPIRATORY_ANSWERS.items() if check_in.yes(code)]
        if reasons:
            evidence = (Ref("check_in", check_in.id),)
            findings.append(Finding("respiratory_depression", Severity.urgent, " ".join(reasons), evidence))
    for report in snapshot.new_symptoms:
        if report.code not in RESPIRATORY_SYMPTOMS or (report.severity or 0) < 3:
            continue
        risks = snapshot.respiratory_risks(report.local_date)
        if risks:
            what = "Severe drowsiness" if report.code == "drowsiness" else "Severe shortness of breath"
            findings.append(
                Finding(
                    "respiratory_depression",
                    Severity.urgent,
                    f"{what} (severity {report.severity}) in a patient at risk of slowed breathing: "
                    f"{_and(risks)}.",
                    (Ref("symptom", report.id),),
                )
            )
    return findings


def dress(snapshot: Snapshot) -> list[Finding]:
    """Urgent: a fever with a rash present (a report of its own or in a check-in), in one check-in or
    within 3 days of each other. High: a fever with swollen glands and no rash in that time. One
    finding at most, the urgent one first, and only one the new entries take part in: an old pair has
    been flagged already."""
    check_ins = _unique(snapshot.nearby_check_ins + snapshot.new_check_ins)
    fevers = sorted((c for c in check_ins if c.yes("fever")), key=lambda c: c.local_date)
    glands = [c for c in check_ins if c.yes("swollen_glands")]
    rashes = [
        s
        for s in _unique(snapshot.nearby_symptoms + snapshot.new_symptoms)
        if s.code == "rash" and s.present == 1
    ]
    new_ids = {c.id for c in snapshot.new_check_ins} | {s.id for s in snapshot.new_symptoms}

    def near(day: date, fever: CheckInObs) -> bool:
        return abs((day - fever.local_date).days) <= DRESS_WINDOW_DAYS

    high: Finding | None = None
    for fever in fevers:
        close_rashes = [Ref("symptom", r.id) for r in rashes if near(r.local_date, fever)]
        if close_rashes:
            evidence = (Ref("check_in", fever.id), *close_rashes)
            if any(ref.id in new_ids for ref in evidence):
                reason = "Reported fever together with a rash, within 3 days."
                return [Finding("dress", Severity.urgent, reason, evidence)]
            continue  # a fever with a rash is no "without a rash" case for the glands
        close_glands = [Ref("check_in", g.id) for g in glands if near(g.local_date, fever)]
        # One check-in may answer both: it is one piece of evidence.
        evidence = tuple(dict.fromkeys((Ref("check_in", fever.id), *close_glands)))
        if high is None and close_glands and any(ref.id in new_ids for ref in evidence):
            reason = "Reported fever together with swollen glands, without a rash, within 3 days."
            high = Finding("dress", Severity.high, reason, evidence)
    return [high] if high is not None else []


def skin_reaction(snapshot: Snapshot) -> list[Finding]:
    """A rash or hives present, unless the same entry (the report, or the check-in it came in) is
    evidence of a dress or anaphylaxis finding: that flag says more."""
    claimed = {ref.id for finding in anaphylaxis(snapshot) + dress(snapshot) for ref in finding.evidence}
    findings = []
    for report in snapshot.new_symptoms:
        if report.code not in SKIN_TERMS or report.present != 1:
            continue
        if report.id in claimed or (report.check_in_id is not None and report.check_in_id in claimed):
            continue
        what = "a rash" if report.code == "rash" else "hives (itchy red bumps on the skin)"
        findings.append(
            Finding(
                "skin_reaction",
                Severity.high,
                f"Reported {what}.",
                (Ref("symptom", report.id),),
                symptom_code=report.code,
            )
        )
    return findings


def severe_symptom(snapshot: Snapshot) -> list[Finding]:
    findings = []
    for report in snapshot.new_symptoms:
        if report.grade == 3 or (report.severity or 0) >= 3:
            what = "composite grade 3" if report.grade == 3 else f"severity {report.severity}"
            findings.append(
                Finding(
                    "severe_symptom",
                    Severity.high,
                    f"Reported {report.code.replace('_', ' ')} at {what}.",
                    (Ref("symptom", report.id),),
                    symptom_code=report.code,
                )
            )
    return findings


def worsening_symptom(snapshot: Snapshot) -> list[Finding]:
    findings = []
    for report in snapshot.new_symptoms:
        if report.grade is None:
            continue
        earlier = [
            s
            for s in snapshot.earlier_symptoms + snapshot.new_symptoms
            if s.code == report.code
            and s.id != report.id
            and s.grade is not None
            and report.reported_at - WORSENING_WINDOW <= s.reported_at < report.reported_at
        ]
        # A first report (none of the term within 14 days) compares with nothing: severe_symptom and
        # persistent_symptom cover it (CLINICAL.md 4).
        previous = max(earlier, key=lambda s: s.reported_at, default=None)
        if previous is None or previous.grade is None:
            continue
        if report.grade - previous.grade >= 2:
            findings.append(
                Finding(
                    "worsening_symptom",
                    Severity.high,
                    f"{_term_name(report.code)} rose from grade {previous.grade} to {report.grade} "
                    "since the previous report.",
                    (Ref("symptom", report.id), Ref("symptom", previous.id)),
                    symptom_code=report.code,
                )
            )
    return findings


def _gad7_rise(snapshot: Snapshot, gad7: Gad7Obs) -> tuple[int | None, Gad7Obs | None]:
    previous = snapshot.previous_gad7.get(gad7.id)
    return (gad7.total - previous.total if previous else None), previous


def anxiety_severe(snapshot: Snapshot) -> list[Finding]:
    """A reliable rise (>= 6, the RCI) against the treatment baseline or the previous GAD-7, or a total
    crossing into the severe band (>= 15 after a previous one < 15). The patient's first GAD-7 and the
    treatment baseline itself never flag: the prescriber knows them."""
    findings = []
    baseline = snapshot.treatment_baseline
    for gad7 in snapshot.new_gad7:
        rise, previous = _gad7_rise(snapshot, gad7)
        if previous is None or (baseline is not None and baseline.id == gad7.id):
            continue
        reasons = []
        evidence = [Ref("anxiety", gad7.id)]
        if previous.total < GAD7_SEVERE <= gad7.total:
            reasons.append(f"GAD-7 total {gad7.total} (severe), up from {previous.total}.")
        if rise is not None and rise >= GAD7_RCI:
            reasons.append(f"GAD-7 rose by {rise} points since the previous one.")
        if reasons:
            evidence.append(Ref("anxiety", previous.id))
        # Against the baseline too, unless it is the previous one (said already).
        if baseline is not None and baseline.id != previous.id and baseline.recorded_at < gad7.recorded_at:
            from_baseline = gad7.total - baseline.total
            if from_baseline >= GAD7_RCI:
                reasons.append(
                    f"GAD-7 rose by {from_baseline} points since the start of treatment "
                    f"({baseline.total} to {gad7.total})."
                )
                evidence.append(Ref("anxiety", baseline.id))
        if reasons:
            findings.append(
                Finding("anxiety_severe", Severity.high, " ".join(reasons), tuple(dict.fromkeys(evidence)))
            )
    return findings


def anxiety_worsening(snapshot: Snapshot) -> list[Finding]:
    findings = []
    for gad7 in snapshot.new_gad7:
        rise, previous = _gad7_rise(snapshot, gad7)
        if rise is not None and previous is not None and GAD7_MCID <= rise < GAD7_RCI:
            findings.append(
                Finding(
                    "anxiety_worsening",
                    Severity.routine,
                    f"GAD-7 rose by {rise} points since the previous one.",
                    (Ref("anxiety", gad7.id), Ref("anxiety", previous.id)),
                )
            )
    return findings


def daily_limits(
    creatinine_clearance_ml_min: float | None, prescribed: Prescribed | None
) -> list[tuple[float, str]]:
    """dose_above_max's limits for a local day, each with its words: the label's 3600 mg, the label
    maximum for the patient's creatinine clearance, the regimen's max_daily_mg. Under a regimen written
    with override_reason, the label maximums its schedule exceeds (those the prescriber overrode) give way
    to the regimen's max_daily_mg, or else its scheduled daily total (CLINICAL.md 4): a patient following
    it is not flagged daily; a label maximum the schedule stays within still applies."""
    label: list[tuple[float, str]] = [(LABEL_MAX_DAILY_MG, "the label maximum of 3600 mg")]
    if creatinine_clearance_ml_min is not None:
        label_max = label_max_daily_mg(creatinine_clearance_ml_min)
        label.append((label_max, f"the label maximum of {label_max} mg for the patient's kidney function"))
    if prescribed is None:
        return label
    own: list[tuple[float, str]] = []
    if prescribed.max_daily_mg is not None:
        own.append((prescribed.max_daily_mg, f"the prescribed maximum of {prescribed.max_daily_mg:g} mg"))
    if prescribed.override:
        label = [(limit, text) for limit, text in label if prescribed.daily_mg <= limit]
        if not own:
            own.append((prescribed.daily_mg, f"the prescribed daily total of {prescribed.daily_mg:g} mg"))
    return label + own


def daily_limits_exceeded(
    total: float, creatinine_clearance_ml_min: float | None, prescribed: Prescribed | None
) -> list[str]:
    """The limits of dose_above_max a local day's taken total exceeds, in words (none: no finding)."""
    return [text for limit, text in daily_limits(creatinine_clearance_ml_min, prescribed) if total > limit]


def dose_above_max(snapshot: Snapshot) -> list[Finding]:
    """Every local day of the new doses whose taken total (`doses_on_days`) exceeds a limit."""
    findings = []
    for day in sorted({d.local_date for d in snapshot.new_doses}):
        doses = snapshot.doses_on_days.get(day, [])
        total = sum(d.dose_mg for d in doses)
        prescribed = snapshot.prescribed_on_days.get(day)
        exceeded = daily_limits_exceeded(total, snapshot.creatinine_clearance_ml_min, prescribed)
        if exceeded:
            reason = f"{total:g} mg taken on {day.isoformat()}, above {' and '.join(exceeded)}."
            findings.append(
                Finding("dose_above_max", Severity.high, reason, tuple(Ref("dose", d.id) for d in doses))
            )
    return findings


def above_prescribed_days(snapshot: Snapshot, day: date) -> list[date]:
    """The days above the prescribed total in the busiest `window_days`-day window around `day` (the
    window ending on it first, then later ones: a late dose may complete a window with later days);
    empty unless `day` itself is above and the window holds `min_days` of them."""
    limits = snapshot.above_prescribed
    if limits is None:
        return []

    def over(on: date) -> bool:
        total = sum(d.dose_mg for d in snapshot.doses_on_days.get(on, []))
        return limits.over(total, snapshot.prescribed_on_days.get(on))

    if not over(day):
        return []
    best: list[date] = []
    for shift in range(limits.window_days):
        last = day + timedelta(days=shift)
        inside = [last - timedelta(days=n) for n in range(limits.window_days - 1, -1, -1)]
        found = [on for on in inside if over(on)]
        if len(found) > len(best):
            best = found
    return best if len(best) >= limits.min_days else []


def above_prescribed(snapshot: Snapshot) -> list[Finding]:
    """A local day's taken total 50% or more above the regimen's scheduled daily total on 2 of the last
    7 local days (product defaults: `snapshot.above_prescribed`). Evidence: the doses of those days."""
    limits = snapshot.above_prescribed
    if limits is None:
        return []
    for day in sorted({d.local_date for d in snapshot.new_doses}, reverse=True):  # the latest first
        days = above_prescribed_days(snapshot, day)
        if not days:
            continue
        taken = [
            f"{sum(d.dose_mg for d in snapshot.doses_on_days[on]):g} mg on {on.isoformat()}" for on in days
        ]
        ordered = {p.daily_mg for on in days if (p := snapshot.prescribed_on_days.get(on)) is not None}
        said = " and ".join([", ".join(taken[:-1]), taken[-1]] if len(taken) > 1 else taken)
        if len(ordered) == 1:
            prescribed = f"the prescribed {ordered.pop():g} mg a day"
        else:
            prescribed = "the daily total prescribed on each of those days"
        reason = f"Took {said}, {limits.percent:g}% or more above {prescribed}."
        evidence = tuple(Ref("dose", d.id) for on in days for d in snapshot.doses_on_days[on])
        # One finding per evaluation: several new days attach to the same flag anyway.
        return [Finding("above_prescribed", Severity.high, reason, evidence)]
    return []


def persistent_symptom_rule(min_days: int, window_days: int, min_grade: int) -> Rule:
    """The same side effect at grade >= min_grade on >= min_days of the last window_days local days
    (CLINICAL.md 4: product defaults 2, 3 and 7)."""

    def persistent_symptom(snapshot: Snapshot) -> list[Finding]:
        findings = []
        seen: set[str] = set()
        for report in snapshot.new_symptoms:
            if report.code in seen or report.grade is None or report.grade < min_grade:
                continue
            candidates = [
                s
                for s in _unique(snapshot.earlier_symptoms + snapshot.new_symptoms)
                if s.code == report.code and s.grade is not None and s.grade >= min_grade
            ]
            matching = _busiest_window(candidates, report.local_date, window_days)
            days = {s.local_date for s in matching}
            if len(days) >= min_days:
                seen.add(report.code)
                findings.append(
                    Finding(
                        "persistent_symptom",
                        Severity.routine,
                        f"{_term_name(report.code)} at grade {min_grade} or more on "
                        f"{len(days)} of the last {window_days} days.",
                        tuple(Ref("symptom", s.id) for s in sorted(matching, key=lambda s: s.reported_at)),
                        symptom_code=report.code,
                    )
                )
        return findings

    return persistent_symptom


def _busiest_window(reports: list[SymptomObs], day: date, window_days: int) -> list[SymptomObs]:
    """The reports of the `window_days`-day window around `day` that has the most report days: the one
    ending on `day` first, then later ones, so a late report that completes a window with reports
    made after its day is seen too (an offline phone syncs days out of order)."""
    best: list[SymptomObs] = []
    for shift in range(window_days):
        last_day = day + timedelta(days=shift)
        inside = [
            s for s in reports if last_day - timedelta(days=window_days - 1) <= s.local_date <= last_day
        ]
        if len({s.local_date for s in inside}) > len({s.local_date for s in best}):
            best = inside
    return best


def write_time_rules(
    persistent_min_days: int, persistent_window_days: int, persistent_min_grade: int
) -> list[Rule]:
    """Every rule evaluated when an entry is recorded, in CLINICAL.md order."""
    return [
        anaphylaxis,
        respiratory_depression,
        suicidality,
        dress,
        skin_reaction,
        seizure,
        severe_symptom,
        worsening_symptom,
        anxiety_severe,
        anxiety_worsening,
        dose_above_max,
        above_prescribed,
        fall,
        persistent_symptom_rule(persistent_min_days, persistent_window_days, persistent_min_grade),
    ]


# ---- time-based rules (the worker's periodic job) ---------------------------------------------------


@dataclass(frozen=True)
class RegimenObs:
    id: uuid.UUID
    start_date: date
    end_date: date | None
    taper: bool

    def active_on(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


def abrupt_stop(
    today: date,
    regimens: list[RegimenObs],
    last_taken_dose_date: date | None,
    recorded_days: set[date],
    days: int,
) -> Finding | None:
    """A regimen (taper or not) in force on each of the last `days` complete local days, no dose taken on
    them, while the patient kept recording: some entry (a check-in, a score, a report, a skipped dose) on
    one of those days (`recorded_days`: the local days with any entry). A patient who recorded nothing
    then has stopped logging, not necessarily taking: missed_check_ins covers them."""
    window = [today - timedelta(days=n) for n in range(days, 0, -1)]
    # Doses scheduled on every day of the window: by one regimen, or by one and the one replacing it.
    if not all(any(r.active_on(day) for r in regimens) for day in window):
        return None
    if last_taken_dose_date is not None and last_taken_dose_date >= window[0]:
        return None
    if not recorded_days.intersection(window):
        return None
    regimen = max(
        (r for r in regimens if r.active_on(window[-1])), key=lambda r: r.start_date
    )  # the one in force on the window's last day
    since = last_taken_dose_date or regimen.start_date
    kind = "a taper regimen (the label asks to taper over at least 1 week)" if regimen.taper else "a regimen"
    return Finding(
        "abrupt_stop",
        Severity.high,
        f"No dose taken on {days} consecutive days ({window[0].isoformat()} to {window[-1].isoformat()}) "
        f"on {kind}, while the patient kept recording other entries.",
        (Ref("regimen", regimen.id),),
        episode=f"since:{since.isoformat()}",
    )


def missed_check_ins(
    today: date, regimens: list[RegimenObs], last_check_in_date: date | None, days: int
) -> Finding | None:
    """No check-in on the last `days` complete local days while a regimen was active."""
    window = [today - timedelta(days=n) for n in range(days, 0, -1)]
    active = [r for r in regimens if all(r.active_on(day) for day in window)]
    if not active:
        return None
    if last_check_in_date is not None and last_check_in_date >= window[0]:
        return None
    since = last_check_in_date or active[0].start_date
    return Finding(
        "missed_check_ins",
        Severity.routine,
        f"No check-in on {days} consecutive days ({window[0].isoformat()} to {window[-1].isoformat()}).",
        (Ref("regimen", active[0].id),),
        episode=f"since:{since.isoformat()}",
    )


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _term_name(code: str) -> str:
    return code.replace("_", " ").capitalize()


def _unique(items: list[_Obs]) -> list[_Obs]:
    seen: dict[uuid.UUID, _Obs] = {}
    for item in items:
        seen.setdefault(item.id, item)
    return list(seen.values())
