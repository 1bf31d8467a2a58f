"""A seeded cohort for the alert-burden replay (`bench.burden`): who the patients are, what they were
prescribed, and what their phones send on each local day, as the JSON a phone syncs.

Everything is drawn from `random.Random` seeded per patient (and per patient-day for the entries), so a
run is reproducible and a scripted event changes nothing but its own patient-days.

The assumptions (each stated with its reason in bench/README.md, "Alert burden"):
- Regimens: 60% maintenance (a stable schedule started 30-180 days before the replay), 25% titrating
  (300 mg at bedtime, then twice, then three times a day, some to 400 mg three times a day, starting
  on any day of the replay), 15% tapering (maintenance, then `taper: true` steps of a week each, to 2/3
  and 1/3 of the daily total, then nothing). Every schedule stays within the label maximum for the
  patient's kidney function.
- Doses follow the schedule: taken on time (within 45 minutes) with the patient's adherence (80-98%),
  1 in 10 taken 1-2.5 hours late (never past midnight), the others missed (half of those logged as
  skipped, half not logged at all).
- Check-ins: each patient checks in on 80-97% of days; on a day without one, half the time the doses
  are still logged. 1 patient in 10 stops logging altogether for 3-6 days once.
- Anxiety is stable: each patient has a GAD-7 level drawn from 8-17 (mild-moderate to severe, the range
  of people prescribed an anxiolytic) and every GAD-7 (every 14 days) is that level +-2 (uniform);
  the daily 0-10 rating is the level scaled to 0-10, +-1.
- Side effects: 0-3 of gabapentin's common ones per patient, each at a stable composite grade (1, or 2
  for 1 term in 5, reported as 1 on 3 days in 10), on 30-90% of check-ins; severity never above 2.
- Red-flag answers: all "no" (every question of the catalog answered, as an app that asks them all).
  True events come only from the scripted set (`SCRIPTED_EVENTS`).

Patient facts and regimen fields that the API does not accept yet are generated but sent only when
the model has them (`bench.burden` filters by the fields it finds), so they need no change here.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Sydney",
)
GAD7_EVERY_DAYS = 14
# Stable side effects: gabapentin's common adverse reactions among the catalog's terms (label 6.1).
STABLE_TERMS = (
    "dizziness",
    "drowsiness",
    "fatigue",
    "coordination",
    "dry_mouth",
    "blurred_vision",
    "limb_swelling",
    "nausea",
    "constipation",
    "concentration",
    "memory",
)
# Attributes giving each composite grade without a severity of 3 or more (CLINICAL.md 2's tables).
GRADED: dict[str, dict[int, list[dict[str, int]]]] = {
    "SI": {
        1: [
            {"severity": 1, "interference": 0},
            {"severity": 1, "interference": 1},
            {"severity": 1, "interference": 2},
            {"severity": 2, "interference": 0},
            {"severity": 2, "interference": 1},
        ],
        2: [{"severity": 2, "interference": 2}, {"severity": 2, "interference": 3}],
    },
    "FS": {
        1: [
            {"frequency": 1, "severity": 1},
            {"frequency": 2, "severity": 1},
            {"frequency": 1, "severity": 2},
        ],
        2: [{"frequency": 2, "severity": 2}, {"frequency": 3, "severity": 2}],
    },
    "FSI": {
        1: [
            {"frequency": 1, "severity": 1, "interference": 0},
            {"frequency": 1, "severity": 1, "interference": 1},
            {"frequency": 2, "severity": 1, "interference": 0},
        ],
        2: [
            {"frequency": 1, "severity": 2, "interference": 1},
            {"frequency": 2, "severity": 2, "interference": 0},
        ],
    },
    "S": {1: [{"severity": 1}], 2: [{"severity": 2}]},
    "F": {1: [{"frequency": 1}, {"frequency": 2}], 2: [{"frequency": 3}]},
}
TERM_SHAPE = {
    "dizziness": "SI",
    "drowsiness": "SI",
    "fatigue": "SI",
    "coordination": "SI",
    "blurred_vision": "SI",
    "concentration": "SI",
    "memory": "SI",
    "shortness_of_breath": "SI",
    "limb_swelling": "FSI",
    "nausea": "FS",
    "vomiting": "FS",
    "dry_mouth": "S",
    "constipation": "S",
    "diarrhea": "F",
}


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class Step:
    """A regimen as the prescriber writes it: the body of POST /v1/patients/{id}/regimens."""

    start: date
    end: date | None
    schedule: tuple[tuple[str, float], ...]  # ("08:00", 300.0)
    max_daily_mg: float | None
    taper: bool = False
    # Fields the API may not accept yet: sent only when RegimenCreate has them.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def daily_mg(self) -> float:
        return sum(mg for _, mg in self.schedule)

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def body(self) -> dict[str, Any]:
        return {
            "medication": "gabapentin",
            "rxnorm": "25480",
            "schedule": [{"time": t, "dose_mg": mg} for t, mg in self.schedule],
            "start_date": self.start.isoformat(),
            "end_date": self.end.isoformat() if self.end else None,
            "max_daily_mg": self.max_daily_mg,
            "taper": self.taper,
            "indication": "anxiety",
            **self.extra,
        }


@dataclass(frozen=True)
class Term:
    code: str
    level: int  # the stable composite grade, 1 or 2
    rate: float  # share of check-ins that report it


@dataclass
class Person:
    index: int
    timezone: str
    kind: str  # maintenance, titrating, tapering
    # Patient facts, by the name of the patient record's field; sent only when the record has them.
    facts: dict[str, Any]
    steps: list[Step]
    adherence: float
    late_rate: float
    check_in_rate: float
    gap: tuple[int, int] | None  # (first day index, days) with nothing logged at all
    gad7_level: int
    gad7_offset: int
    terms: list[Term]
    check_in_minute: int  # minutes after midnight, local

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def step_on(self, day: date) -> Step | None:
        covering = [s for s in self.steps if s.covers(day)]
        return max(covering, key=lambda s: s.start) if covering else None

    def at(self, day: date, minute: int) -> datetime:
        return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.zone)


def _schedule(times: tuple[str, ...], mg: float) -> tuple[tuple[str, float], ...]:
    return tuple((t, mg) for t in times)


BEDTIME = ("21:00",)
TWICE = ("08:00", "20:00")
THRICE = ("08:00", "14:00", "20:00")


def renal_max(clearance: float | None) -> float:
    """CLINICAL.md 4, label table 1."""
    if clearance is None or clearance >= 60:
        return 3600
    if clearance >= 30:
        return 1400
    return 700 if clearance >= 15 else 300


def _max_for(rng: random.Random, daily: float) -> float | None:
    """The prescriber's maximum: none (40%), the schedule's own total (20%), or room to titrate (40%)."""
    draw = rng.random()
    if draw < 0.4:
        return None
    if draw < 0.6:
        return daily
    return max(1800.0, 2 * daily)


def person(seed: int, index: int, first_day: date, span: int) -> Person:
    """Patient `index` of the cohort; the replay's `span` days start on `first_day`. Titrations and
    tapers start anywhere in it (a clinic sees them all the time), so the counted window has them."""
    rng = random.Random(f"{seed}:person:{index}")
    age = rng.choice([rng.randint(18, 64)] * 17 + [rng.randint(65, 85)] * 3)  # 15% aged 65 or over
    draw = rng.random()
    clearance = None if draw < 0.65 else 90.0 if draw < 0.9 else 45.0 if draw < 0.98 else 25.0
    limit = renal_max(clearance)
    facts: dict[str, Any] = {
        "birth_year": first_day.year - age,
        "takes_opioids_or_benzodiazepines": rng.random() < 0.15,
        "creatinine_clearance_ml_min": clearance,
        # CLINICAL.md 3's respiratory risk facts (issue 23): sent once the patient record has them.
        "takes_other_cns_depressants": rng.random() < 0.25,
        "has_lung_disease": rng.random() < 0.08,
    }
    kind_draw = rng.random()
    kind = "maintenance" if kind_draw < 0.6 else "titrating" if kind_draw < 0.85 else "tapering"
    steps: list[Step] = []
    if kind == "titrating":
        start = first_day + timedelta(days=rng.randrange(max(1, span - 7)))
        ceiling = 400.0 if rng.random() < 0.4 and limit >= 3 * 400 else 300.0
        plan = [(0, BEDTIME, 300.0), (3, TWICE, 300.0), (6, THRICE, 300.0)]
        if ceiling > 300:
            plan.append((14, THRICE, ceiling))
        if limit < 900:
            plan = plan[:2]
        maximum = _max_for(rng, 3 * ceiling)
        for at, times, mg in plan:
            daily = len(times) * mg
            top = None if maximum is None else max(maximum, daily)
            steps.append(Step(start + timedelta(days=at), None, _schedule(times, mg), top))
    else:
        mg = rng.choice([300.0, 300.0, 400.0, 600.0])
        times = THRICE
        while len(times) * mg > limit:
            mg, times = (300.0, TWICE) if times == THRICE else (300.0, BEDTIME)
        start = first_day - timedelta(days=rng.randint(30, 180))
        steps.append(Step(start, None, _schedule(times, mg), _max_for(rng, len(times) * mg)))
        if kind == "tapering":
            taper_start = first_day + timedelta(days=rng.randrange(max(1, span - 7)))
            daily = len(times) * mg
            # Two weekly steps, to 2/3 and to 1/3 of the daily total, then nothing.
            levels = [round(daily * 2 / 3), round(daily / 3)]
            for n, level in enumerate(levels):
                tapered = _schedule(TWICE, level / 2) if level >= 600 else _schedule(BEDTIME, level)
                last = n == len(levels) - 1
                end = taper_start + timedelta(days=7 * (n + 1) - 1) if last else None
                steps.append(Step(taper_start + timedelta(days=7 * n), end, tapered, level, taper=True))
    gap = None
    if rng.random() < 0.1:
        gap = (rng.randrange(max(1, span)), rng.randint(3, 6))
    count = rng.choices([0, 1, 2, 3], weights=[25, 35, 25, 15])[0]
    terms = [
        Term(code, 2 if rng.random() < 0.2 else 1, rng.uniform(0.3, 0.9))
        for code in rng.sample(STABLE_TERMS, count)
    ]
    return Person(
        index=index,
        timezone=TIMEZONES[index % len(TIMEZONES)],
        kind=kind,
        facts=facts,
        steps=steps,
        adherence=rng.uniform(0.8, 0.98),
        late_rate=0.1,
        check_in_rate=rng.uniform(0.8, 0.97),
        gap=gap,
        gad7_level=rng.randint(8, 17),
        gad7_offset=rng.randrange(GAD7_EVERY_DAYS),
        terms=terms,
        check_in_minute=rng.randint(19 * 60, 22 * 60 + 30),
    )


def cohort(seed: int, patients: int, first_day: date, span: int) -> list[Person]:
    return [person(seed, i, first_day, span) for i in range(patients)]


# ---- a day of entries ------------------------------------------------------------------------------


@dataclass
class DayPlan:
    """What a patient's phone sends for one local day, before it is turned into JSON. Scripted events
    change a plan; `ids` collects the ids of what an event put in (to find the flags it raised)."""

    person: Person
    day: date
    index: int  # day index from the replay's first day
    logs: str  # "full" (check-in and doses), "doses" (doses only), "none"
    doses: list[dict[str, Any]] = field(default_factory=list)
    check_in: dict[str, Any] | None = None
    ids: list[str] = field(default_factory=list)


def _logs(seed: int, p: Person, k: int, first_day: date) -> str:
    if p.gap is not None and p.gap[0] <= k < p.gap[0] + p.gap[1]:
        return "none"
    if first_day + timedelta(days=k) < p.steps[0].start:
        return "none"  # not using the app before the first regimen starts (those titrating)
    rng = random.Random(f"{seed}:logs:{p.index}:{k}")
    if rng.random() < p.check_in_rate:
        return "full"
    return "doses" if rng.random() < 0.5 else "none"


def _gad7_due(seed: int, p: Person, k: int, first_day: date) -> bool:
    """A GAD-7 is answered at the first check-in on or after each due day (every 14 days)."""
    for back in range(GAD7_EVERY_DAYS):
        j = k - back
        if j < 0:
            return False
        if j % GAD7_EVERY_DAYS == p.gad7_offset:
            return all(_logs(seed, p, i, first_day) != "full" for i in range(j, k))
    return False


def gad7_items(total: int, rng: random.Random) -> list[int]:
    """Seven answers 0-3 adding up to `total` (0-21), spread at random."""
    items = [0] * 7
    for _ in range(max(0, min(21, total))):
        room = [i for i in range(7) if items[i] < 3]
        items[rng.choice(room)] += 1
    return items


def symptom(code: str, attributes: dict[str, int], at: datetime, rng: random.Random) -> dict[str, Any]:
    return {"id": new_id(rng), "reported_at": at.isoformat(), "code": code, **attributes}


def plan_day(seed: int, p: Person, k: int, first_day: date, red_flags: list[str]) -> DayPlan:
    """Patient p's stable day k: doses per schedule, and the check-in with all red flags "no"."""
    day = first_day + timedelta(days=k)
    plan = DayPlan(p, day, k, _logs(seed, p, k, first_day))
    if plan.logs == "none":
        return plan
    rng = random.Random(f"{seed}:day:{p.index}:{k}")
    step = p.step_on(day)
    for slot, mg in step.schedule if step else ():
        hour, minute = map(int, slot.split(":"))
        scheduled = p.at(day, hour * 60 + minute)
        draw = rng.random()
        if draw < p.adherence:
            delay = rng.randint(60, 150) if rng.random() < p.late_rate else rng.randint(-45, 45)
            plan.doses.append(dose(scheduled + timedelta(minutes=delay), mg, scheduled, rng))
        elif rng.random() < 0.5:
            plan.doses.append(dose(scheduled, mg, scheduled, rng, status="skipped"))
    if plan.logs == "full":
        at = p.at(day, p.check_in_minute)
        answers: dict[str, Any] = {code: (0 if code == "self_harm_thoughts" else False) for code in red_flags}
        level = p.gad7_level
        check_in: dict[str, Any] = {
            "id": new_id(rng),
            "date": day.isoformat(),
            "submitted_at": at.isoformat(),
            "anxiety_rating": max(0, min(10, round(level * 10 / 21) + rng.randint(-1, 1))),
            "symptoms": [],
            "red_flags": answers,
        }
        if _gad7_due(seed, p, k, first_day):
            check_in["gad7"] = gad7_items(level + rng.randint(-2, 2), rng)
        for term in p.terms:
            if rng.random() < term.rate:
                grade = term.level if term.level == 1 or rng.random() < 0.7 else 1
                attributes = rng.choice(GRADED[TERM_SHAPE[term.code]][grade])
                check_in["symptoms"].append(symptom(term.code, attributes, at, rng))
        plan.check_in = check_in
    return plan


def dose(
    taken_at: datetime, mg: float, scheduled: datetime | None, rng: random.Random, status: str = "taken"
) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": new_id(rng), "taken_at": taken_at.isoformat(), "dose_mg": mg}
    if scheduled is not None:
        entry["scheduled_for"] = scheduled.isoformat()
    if status != "taken":
        entry["status"] = status
    return entry


def sync_entries(plan: DayPlan) -> list[dict[str, Any]]:
    """The day as one /v1/sync batch from the patient's phone: its doses, then its check-in."""
    entries = [{"type": "dose", "patient_id": "me", **d} for d in plan.doses]
    if plan.check_in is not None:
        entries.append({"type": "check_in", "patient_id": "me", **plan.check_in})
    return entries


# ---- scripted true events (variant b) --------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A true event injected into one patient's days: the rule that must flag it, how to pick the
    patient, and what it changes. Time-based rules are found by the patient and the event's days."""

    name: str
    rule: str
    expected: str  # the severity CLINICAL.md gives it
    days: int  # how many days it spans (from its first)
    suits: Callable[[Person, date], bool]
    apply: Callable[[DayPlan, int, random.Random], None]  # (plan, day within the event, rng)
    time_based: bool = False
    # Red-flag questions or patient fields the event needs from the API (issue 23 adds some): until
    # the catalog or the patient record has them, the event is reported as waiting, not sent.
    needs: tuple[str, ...] = ()


def _full(plan: DayPlan) -> dict[str, Any]:
    """The plan's check-in, made if the patient would not have checked in (an event is reported)."""
    if plan.check_in is None:
        rng = random.Random(f"event-check-in:{plan.person.index}:{plan.index}")
        at = plan.person.at(plan.day, plan.person.check_in_minute)
        plan.check_in = {
            "id": new_id(rng),
            "date": plan.day.isoformat(),
            "submitted_at": at.isoformat(),
            "symptoms": [],
            "red_flags": {},
        }
        plan.logs = "full"
    return plan.check_in


def _answer(code: str, value: bool | int) -> Callable[[DayPlan, int, random.Random], None]:
    def apply(plan: DayPlan, _n: int, _rng: random.Random) -> None:
        check_in = _full(plan)
        check_in["red_flags"][code] = value
        plan.ids.append(check_in["id"])

    return apply


def _answers(values: dict[str, bool | int]) -> Callable[[DayPlan, int, random.Random], None]:
    def apply(plan: DayPlan, n: int, rng: random.Random) -> None:
        for code, value in values.items():
            _answer(code, value)(plan, n, rng)

    return apply


def _report(code: str, attributes: dict[str, int], with_fever: bool = False) -> Callable[..., None]:
    def apply(plan: DayPlan, _n: int, rng: random.Random) -> None:
        check_in = _full(plan)
        check_in["symptoms"] = [s for s in check_in["symptoms"] if s["code"] != code]
        report = symptom(code, attributes, datetime.fromisoformat(check_in["submitted_at"]), rng)
        check_in["symptoms"].append(report)
        plan.ids += [check_in["id"], report["id"]]
        if with_fever:
            check_in["red_flags"]["fever"] = True

    return apply


def _worsening(plan: DayPlan, n: int, rng: random.Random) -> None:
    """Fatigue at grade 1, then two days later at grade 3 (a rise of 2 against the previous report)."""
    if n == 0:
        _report("fatigue", {"severity": 1, "interference": 0})(plan, n, rng)
    elif n == 2:
        _report("fatigue", {"severity": 2, "interference": 4})(plan, n, rng)


def _persistent(plan: DayPlan, n: int, rng: random.Random) -> None:
    """Nausea at grade 2 on 3 days running."""
    _report("nausea", {"frequency": 2, "severity": 2})(plan, n, rng)


def _gad7_pair(first: int, second: int) -> Callable[[DayPlan, int, random.Random], None]:
    """Two GAD-7s 14 days apart: `first`, then `second` (the scripted change)."""

    def apply(plan: DayPlan, n: int, rng: random.Random) -> None:
        if n in (0, GAD7_EVERY_DAYS):
            check_in = _full(plan)
            check_in["gad7"] = gad7_items(first if n == 0 else second, rng)
            if n:
                # The GAD-7's own id, as the recorder derives a check-in part's (services/entries/kinds.py).
                plan.ids.append(str(uuid.uuid5(uuid.UUID(check_in["id"]), "gad7")))
        elif plan.check_in is not None:
            plan.check_in.pop("gad7", None)  # no other GAD-7 between the two

    return apply


def _extra_dose(plan: DayPlan, _n: int, rng: random.Random) -> None:
    """One more dose that takes the day's total 300 mg over the regimen's maximum."""
    step = plan.person.step_on(plan.day)
    assert step is not None and step.max_daily_mg is not None
    _full(plan)
    taken = [d for d in plan.doses if d.get("status", "taken") == "taken"]
    total = sum(d["dose_mg"] for d in taken)
    extra = step.max_daily_mg - total + 300
    at = plan.person.at(plan.day, 17 * 60)
    plan.doses.append(dose(at, extra, None, rng))
    plan.ids += [d["id"] for d in plan.doses]


def _doubled(plan: DayPlan, n: int, rng: random.Random) -> None:
    """Every scheduled dose taken twice over (on the event's first and third day)."""
    if n not in (0, 2):
        return
    step = plan.person.step_on(plan.day)
    assert step is not None
    _full(plan)
    plan.doses = []
    for slot, mg in step.schedule:
        hour, minute = map(int, slot.split(":"))
        at = plan.person.at(plan.day, hour * 60 + minute)
        plan.doses.append(dose(at, 2 * mg, at, rng))
    plan.ids += [d["id"] for d in plan.doses]


def _stops_taking(plan: DayPlan, _n: int, rng: random.Random) -> None:
    """No dose taken (each logged as skipped), while the daily check-in goes on."""
    check_in = _full(plan)
    plan.doses = [{**d, "status": "skipped"} for d in plan.doses]
    plan.ids.append(check_in["id"])


def _silent(plan: DayPlan, _n: int, _rng: random.Random) -> None:
    """Nothing logged at all."""
    plan.logs, plan.doses, plan.check_in = "none", [], None


def _on_regimen(p: Person, day: date) -> bool:
    return p.step_on(day) is not None


def _stable(p: Person, day: date) -> bool:
    return p.kind == "maintenance" and p.gap is None


SCRIPTED_EVENTS: tuple[Event, ...] = (
    Event(
        "face swelling answered yes", "anaphylaxis", "urgent", 1, _on_regimen, _answer("face_swelling", True)
    ),
    Event(
        "hard to wake answered yes",
        "respiratory_depression",
        "urgent",
        1,
        _on_regimen,
        _answer("hard_to_wake", True),
    ),
    Event(
        "drowsiness severity 3 on an opioid or benzodiazepine",
        "respiratory_depression",
        "urgent",
        1,
        lambda p, d: bool(p.facts["takes_opioids_or_benzodiazepines"]),
        _report("drowsiness", {"severity": 3, "interference": 2}),
    ),
    Event(
        "slow, shallow breathing answered yes",
        "respiratory_depression",
        "urgent",
        1,
        _on_regimen,
        _answer("slow_breathing", True),
        needs=("slow_breathing",),
    ),
    Event(
        "shortness of breath at severity 3 with lung disease",
        "respiratory_depression",
        "urgent",
        1,
        lambda p, d: bool(p.facts["has_lung_disease"]),
        _report("shortness_of_breath", {"severity": 3, "interference": 2}),
        needs=("has_lung_disease",),
    ),
    Event(
        "thoughts of self-harm answered 1",
        "suicidality",
        "urgent",
        1,
        _on_regimen,
        _answer("self_harm_thoughts", 1),
    ),
    Event(
        "fever and a rash in one check-in",
        "dress",
        "urgent",
        1,
        _on_regimen,
        _report("rash", {"present": 1}, True),
    ),
    Event(
        "fever and swollen glands, no rash",
        "dress",
        "high",
        1,
        _on_regimen,
        _answers({"fever": True, "swollen_glands": True}),
    ),
    Event("hives alone", "skin_reaction", "high", 1, _on_regimen, _report("hives", {"present": 1})),
    Event("seizure answered yes", "seizure", "urgent", 1, _on_regimen, _answer("seizure", True)),
    Event(
        "dizziness at severity 3",
        "severe_symptom",
        "high",
        1,
        _on_regimen,
        _report("dizziness", {"severity": 3, "interference": 2}),
    ),
    Event(
        "fatigue grade 1, then grade 3 two days later",
        "worsening_symptom",
        "high",
        3,
        _on_regimen,
        _worsening,
    ),
    Event(
        "GAD-7 9, then 16 two weeks later",
        "anxiety_severe",
        "high",
        GAD7_EVERY_DAYS + 1,
        _stable,
        _gad7_pair(9, 16),
    ),
    Event(
        "GAD-7 8, then 13 two weeks later",
        "anxiety_worsening",
        "routine",
        GAD7_EVERY_DAYS + 1,
        _stable,
        _gad7_pair(8, 13),
    ),
    Event(
        "a day's total 300 mg over the regimen's maximum",
        "dose_above_max",
        "high",
        1,
        lambda p, d: _stable(p, d) and p.steps[0].max_daily_mg is not None,
        _extra_dose,
    ),
    Event(
        "every dose doubled on 2 days of 3, regimen without a maximum",
        "above_prescribed",
        "high",
        3,
        lambda p, d: (
            _stable(p, d)
            and p.steps[0].max_daily_mg is None
            and 2 * p.steps[0].daily_mg <= renal_max(p.facts["creatinine_clearance_ml_min"])
        ),
        _doubled,
    ),
    Event(
        "no dose for 5 days while checking in",
        "abrupt_stop",
        "high",
        5,
        _stable,
        _stops_taking,
        time_based=True,
    ),
    Event(
        "no dose for 5 days on a taper while checking in",
        "abrupt_stop",
        "high",
        5,
        lambda p, d: (
            p.kind == "tapering"
            and p.gap is None
            and all((s := p.step_on(d + timedelta(days=n))) is not None and s.taper for n in range(5))
        ),
        _stops_taking,
        time_based=True,
    ),
    Event("a fall answered yes", "fall", "high", 1, _on_regimen, _answer("fall", True)),
    Event(
        "nausea at grade 2 on 3 days running", "persistent_symptom", "routine", 3, _on_regimen, _persistent
    ),
    Event("nothing logged for 5 days", "missed_check_ins", "routine", 5, _stable, _silent, time_based=True),
)


@dataclass
class Placed:
    """An event given its patient and first day (day index from the replay's first day)."""

    event: Event
    patient: int
    first: int
    ids: list[str] = field(default_factory=list)


def place(
    events: tuple[Event, ...],
    people: list[Person],
    first_day: date,
    window: tuple[int, int],
    available: set[str],
) -> tuple[list[Placed], list[tuple[Event, str]]]:
    """Each event on its own patient, spread over the counted window [first, last] of day indexes, so
    that its days (and 4 more, for the time-based rules) fit; and the events left out, with why (the API
    lacks what they need, or no patient suits them)."""
    placed: list[Placed] = []
    left_out: list[tuple[Event, str]] = []
    used: set[int] = set()
    first, last = window
    for n, event in enumerate(events):
        lacking = [name for name in event.needs if name not in available]
        if lacking:
            left_out.append((event, f"waiting for {', '.join(lacking)} in the API"))
            continue
        room = last - first - event.days - 4
        start = first + (n * 3) % max(1, room + 1) if room >= 0 else first
        day = first_day + timedelta(days=start)
        for p in people:
            if p.index not in used and p.gap is None and event.suits(p, day) and _on_regimen(p, day):
                used.add(p.index)
                placed.append(Placed(event, p.index, start))
                break
        else:
            left_out.append((event, "no patient suited it"))
    return placed, left_out
