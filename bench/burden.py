"""The alert burden (issue 23): a seeded cohort replayed day by day through the real write path and the
real time-rules job on a scratch PostgreSQL database, then counted.

    python -m bench.burden                                   # 500 patients x 28 days, both variants
    python -m bench.burden --patients 100 --days 14 --variant a

Each local day, every patient's phone sends that day's entries as one /v1/sync batch (the sync service,
called as its route calls it: the body validated as `SyncRequest`, one unit of work per request), so
every write-time rule runs as in production; then `evaluate_time_rules` runs with `now` at 12:00 UTC of
the next day (every zone of the cohort is on that next day then, so each day is complete); then the
clinic triages (below). The replay's days lie in the past (its last day is the day before yesterday)
because the recorder refuses entries from the future: every entry reaches the server "late", which
changes only the wording of a flag's reason, never whether it is raised.

What is counted, over the counted window (after the warm-up days, which give everyone a history):
- alerts: outbox events `flag.created`, `flag.escalated` and `flag.reopened` (each one a webhook per
  subscribed endpoint; no endpoint is subscribed here, so the events themselves are counted), by rule
  and by the severity they carry, per 100 check-ins stored;
- urgent alerts per 500 patients per day;
- the share of patient-weeks (each patient, each whole week of the window) with a high or urgent alert.

The clinic's triage (`--triage daily`, the default): at the end of each day, a provider resolves every
urgent or high flag raised before that day (CLINICAL.md 4: high is reviewed within one working day),
and every 7th day each routine flag raised before it (routine: the next review). A resolved flag lets
the next finding raise a new one, as in a clinic; `--triage none` leaves every flag open.

Variant a: the stable cohort (bench/cohort.py), every red-flag answer "no". Variant b: the same cohort
with the scripted true events (`cohort.SCRIPTED_EVENTS`, one or more per rule of CLINICAL.md 4), each
on its own patient; the report says, per event, whether its rule raised a flag from it (by the event's
entries in the flag's evidence, or for the time-based rules by the patient and the event's days), and
lists a rule that does not exist yet as missing. The run does not fail on a missing rule; it fails
(exit 1) when an entry is refused, so the generator cannot drift from what the API accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bench import cohort, pg
from bench.cohort import Event, Person, Placed
from bench.config import BENCH_DIR, BenchConfig
from models.accounts import Patient, Role, User
from models.entry_schemas import SyncRequest
from models.flags import Flag, ResolveRequest
from models.outbox import OutboxEvent
from models.regimens import RegimenCreate
from services.accounts import users
from services.accounts.access import Caller
from services.clinical.catalog import RED_FLAGS
from services.database import create_engine, create_session_factory, session_scope
from services.entries import sync
from services.flags import lifecycle
from services.flags.time_rules import evaluate_time_rules
from services.localtime import local_date
from services.prescribing import regimens
from services.settings import Settings

# CLINICAL.md 4's rules, in its table's order.
RULES = (
    "anaphylaxis",
    "respiratory_depression",
    "suicidality",
    "dress",
    "skin_reaction",
    "seizure",
    "severe_symptom",
    "worsening_symptom",
    "anxiety_severe",
    "anxiety_worsening",
    "dose_above_max",
    "above_prescribed",
    "abrupt_stop",
    "fall",
    "persistent_symptom",
    "missed_check_ins",
)
SEVERITIES = ("urgent", "high", "routine")
ALERT_EVENTS = ("flag.created", "flag.escalated", "flag.reopened")
EMAIL_DOMAIN = "burden.symptrack.test"
# A time-based event is looked for up to this many days after its last day.
TIME_RULE_SLACK_DAYS = 4


@dataclass(frozen=True)
class Options:
    patients: int = 500
    days: int = 28
    warmup: int = 14
    seed: int = 23
    triage: str = "daily"
    concurrency: int = 4

    @property
    def total_days(self) -> int:
        return self.warmup + self.days


@dataclass(frozen=True)
class Alert:
    day: int  # day index of the replay
    patient_id: uuid.UUID
    flag_id: uuid.UUID
    rule: str
    severity: str
    type: str


@dataclass
class Member:
    person: Person
    patient: Patient
    caller: Caller


@dataclass
class Outcome:
    """A scripted event and what became of it."""

    name: str
    rule: str
    expected: str
    patient: int
    day: int
    raised: str | None  # the severity of the flag it raised, or None
    also: list[str] = field(default_factory=list)


@dataclass
class Result:
    variant: str
    options: Options
    first_day: date
    check_ins: int = 0
    entries: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    seconds: float = 0.0

    # ---- the counts ----

    def counted(self) -> list[Alert]:
        return [a for a in self.alerts if a.day >= self.options.warmup]

    def by_rule(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for alert in self.counted():
            table[alert.rule][alert.severity] += 1
        return table

    def per_100(self, count: int) -> float:
        return 100 * count / self.check_ins if self.check_ins else 0.0

    def severity_total(self, severity: str) -> int:
        return sum(1 for a in self.counted() if a.severity == severity)

    def urgent_per_500_per_day(self) -> float:
        days, patients = self.options.days, self.options.patients
        return self.severity_total("urgent") / days * 500 / patients if days and patients else 0.0

    def weeks(self) -> int:
        return max(1, self.options.days // 7)

    def patient_weeks_flagged(self) -> int:
        weeks = self.weeks()
        flagged = {
            (a.patient_id, (a.day - self.options.warmup) // 7)
            for a in self.counted()
            if a.severity in ("urgent", "high") and (a.day - self.options.warmup) // 7 < weeks
        }
        return len(flagged)

    def patients_flagged(self) -> int:
        return len({a.patient_id for a in self.counted() if a.severity in ("urgent", "high")})

    def summary(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "patients": self.options.patients,
            "days": self.options.days,
            "warmup_days": self.options.warmup,
            "seed": self.options.seed,
            "triage": self.options.triage,
            "first_counted_day": (self.first_day + timedelta(days=self.options.warmup)).isoformat(),
            "check_ins": self.check_ins,
            "entries": self.entries,
            "refused": dict(self.refused),
            "alerts_by_rule": {rule: dict(counts) for rule, counts in sorted(self.by_rule().items())},
            "per_100_check_ins": {s: round(self.per_100(self.severity_total(s)), 3) for s in SEVERITIES},
            "urgent_per_500_patients_per_day": round(self.urgent_per_500_per_day(), 3),
            "patient_weeks": self.options.patients * self.weeks(),
            "patient_weeks_flagged_high_or_urgent": self.patient_weeks_flagged(),
            "patients_flagged_high_or_urgent": self.patients_flagged(),
            "events": [o.__dict__ for o in self.outcomes],
            "events_left_out": self.left_out,
            "seconds": round(self.seconds, 1),
        }


# ---- the cohort in the database -----------------------------------------------------------------------


def _accepted(names: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The generated fields the API accepts today; the others wait until it does."""
    return {key: value for key, value in wanted.items() if key in names}


async def load(
    factory: async_sessionmaker[AsyncSession], people: list[Person]
) -> tuple[list[Member], Caller]:
    """The organization, its provider, and every patient with their regimens, through the services."""
    patient_params = dict(inspect.signature(users.create_patient).parameters)
    regimen_fields = dict(RegimenCreate.model_fields)
    async with session_scope(factory) as session:
        organization = await users.create_organization(session, "Burden Clinic")
        provider = await users.create_user(
            session,
            organization_id=organization.id,
            email=f"provider@{EMAIL_DOMAIN}",
            name="Dr. Burden",
            role=Role.provider,
            password=None,
        )
    staff = Caller(provider.id, Role.provider, organization.id, uuid.uuid4())
    ids: list[uuid.UUID] = []
    for start in range(0, len(people), 100):
        async with session_scope(factory) as session:
            for person in people[start : start + 100]:
                patient = await users.create_patient(
                    session,
                    organization_id=organization.id,
                    email=f"patient{person.index}@{EMAIL_DOMAIN}",
                    name=f"Patient {person.index:04d}",
                    timezone=person.timezone,
                    provider_ids=[provider.id],
                    **_accepted(patient_params, person.facts),
                )
                for step in person.steps:
                    body = RegimenCreate.model_validate(_accepted(regimen_fields, step.body()))
                    await regimens.create_regimen(session, staff, patient, body)
                ids.append(patient.id)
    async with session_scope(factory) as session:
        rows = await session.execute(
            select(Patient, User)
            .join(User, col(User.id) == col(Patient.user_id))
            .where(col(Patient.id).in_(ids))
        )
        found = {patient.id: (patient, user) for patient, user in rows.all()}
    members = []
    for person, patient_id in zip(people, ids, strict=True):
        patient, user = found[patient_id]
        caller = Caller(
            user.id, Role.patient, organization.id, uuid.uuid4(), patient.id, own_records=(patient, user)
        )
        members.append(Member(person, patient, caller))
    return members, staff


# ---- the replay -------------------------------------------------------------------------------------


def first_day_for(options: Options, today: date | None = None) -> date:
    """The replay's first day: its last day is the day before yesterday (UTC), so that every entry of
    every zone and each pass of the time rules (12:00 UTC the day after) lies in the past."""
    today = today or datetime.now(UTC).date()
    return today - timedelta(days=options.total_days + 1)


async def replay(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    options: Options,
    variant: str,
    events: tuple[Event, ...] = (),
    people: list[Person] | None = None,
    first_day: date | None = None,
    progress: bool = False,
) -> Result:
    """Loads the cohort, replays every day, and counts. `events` are placed in the counted window."""
    started = time.perf_counter()
    first_day = first_day or first_day_for(options)
    people = (
        people
        if people is not None
        else cohort.cohort(options.seed, options.patients, first_day, options.total_days)
    )
    result = Result(variant, options, first_day)
    members, staff = await load(factory, people)
    window = (options.warmup, options.total_days - 1)
    available = set(RED_FLAGS) | set(Patient.model_fields)
    placed, left_out = cohort.place(events, people, first_day, window, available)
    result.left_out = [f"{event.rule} ({event.name}): {why}" for event, why in left_out]
    by_patient_day: dict[tuple[int, int], tuple[Placed, int]] = {}
    for item in placed:
        for n in range(item.event.days):
            by_patient_day[(item.patient, item.first + n)] = (item, n)
    questions = list(RED_FLAGS)
    semaphore = asyncio.Semaphore(options.concurrency)
    seen: set[uuid.UUID] = set()
    since = datetime(1970, 1, 1, tzinfo=UTC)
    created_on: dict[uuid.UUID, int] = {}

    async def send(member: Member, k: int) -> None:
        plan = cohort.plan_day(options.seed, member.person, k, first_day, questions)
        scripted = by_patient_day.get((member.person.index, k))
        if scripted is not None:
            item, n = scripted
            item.event.apply(plan, n, random.Random(f"{options.seed}:event:{item.patient}:{k}"))
            item.ids.extend(plan.ids)
        entries = cohort.sync_entries(plan)
        if not entries:
            return
        request = SyncRequest.model_validate({"entries": entries})
        async with semaphore, session_scope(factory) as session:
            answer = await sync.sync(session, settings, member.caller, request.entries)
        for entry, outcome in zip(entries, answer.results, strict=True):
            if outcome.status == 201:
                result.entries += 1
                if entry["type"] == "check_in" and k >= options.warmup:
                    result.check_ins += 1
            else:
                detail = outcome.error.detail if outcome.error else ""
                result.refused[f"{entry['type']} {outcome.status}: {detail}"[:200]] += 1

    for k in range(options.total_days):
        day = first_day + timedelta(days=k)
        await asyncio.gather(*(send(member, k) for member in members))
        now = datetime.combine(day + timedelta(days=1), clock(12, 0), tzinfo=UTC)
        await evaluate_time_rules(factory, settings, now)
        since = await _collect(factory, result, k, since, seen, created_on)
        if options.triage == "daily":
            await _triage(factory, staff, k, created_on)
        if progress:
            print(
                f"[burden {variant}] day {k + 1}/{options.total_days} ({day}): {result.entries:,} entries, "
                f"{len(result.alerts):,} alerts, {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    if placed:
        result.outcomes = await _outcomes(factory, placed, members, first_day)
    result.seconds = time.perf_counter() - started
    return result


async def _collect(
    factory: async_sessionmaker[AsyncSession],
    result: Result,
    k: int,
    since: datetime,
    seen: set[uuid.UUID],
    created_on: dict[uuid.UUID, int],
) -> datetime:
    """The day's new alert events (outbox rows written since the last look), dated day k."""
    async with session_scope(factory) as session:
        rows = await session.execute(
            select(OutboxEvent).where(
                col(OutboxEvent.created_at) >= since, col(OutboxEvent.type).in_(ALERT_EVENTS)
            )
        )
        events = list(rows.scalars())
    latest = since
    for event in events:
        latest = max(latest, event.created_at)
        if event.id in seen:
            continue
        seen.add(event.id)
        flag = event.data["flag"]
        flag_id = uuid.UUID(flag["id"])
        if event.type == "flag.created":
            created_on[flag_id] = k
        result.alerts.append(
            Alert(k, uuid.UUID(event.data["patient_id"]), flag_id, flag["rule"], flag["severity"], event.type)
        )
    return latest


async def _triage(
    factory: async_sessionmaker[AsyncSession], staff: Caller, k: int, created_on: dict[uuid.UUID, int]
) -> None:
    """The clinic at the end of day k: urgent and high flags raised before today resolved; routine ones
    too on each 7th day."""
    weekly = k % 7 == 6
    async with session_scope(factory) as session:
        rows = await session.execute(
            select(col(Flag.id), col(Flag.severity)).where(col(Flag.status).in_(lifecycle.ACTIVE))
        )
        due = [
            flag_id
            for flag_id, severity in rows.all()
            if created_on.get(flag_id, k) < k and (severity != "routine" or weekly)
        ]
        for flag_id in due:
            await lifecycle.resolve(session, staff, flag_id, ResolveRequest(note="Reviewed (burden bench)."))


async def _outcomes(
    factory: async_sessionmaker[AsyncSession], placed: list[Placed], members: list[Member], first_day: date
) -> list[Outcome]:
    """Per scripted event: the flag of its rule it raised (by its entries in the evidence, or for a
    time-based rule by its patient and days), and the other rules its entries raised."""
    patients = {m.person.index: m.patient for m in members}
    async with session_scope(factory) as session:
        rows = await session.execute(
            select(Flag).where(col(Flag.patient_id).in_([patients[p.patient].id for p in placed]))
        )
        flags = list(rows.scalars())
    outcomes = []
    for item in placed:
        patient = patients[item.patient]
        first = first_day + timedelta(days=item.first)
        last = first + timedelta(days=item.event.days - 1 + TIME_RULE_SLACK_DAYS)
        ids = set(item.ids)
        mine = []
        for flag in flags:
            if flag.patient_id != patient.id:
                continue
            evidence = {entry["id"] for entry in flag.evidence}
            # A time-based flag: a lapse episode, or evidence that names the regimen (not an entry).
            lapse = flag.episode is not None or any(entry["type"] == "regimen" for entry in flag.evidence)
            if evidence & ids or (
                item.event.time_based
                and lapse
                and first <= local_date(flag.observed_at, patient.timezone) <= last
            ):
                mine.append(flag)
        raised = [f for f in mine if f.rule == item.event.rule]
        severity = max(raised, key=lambda f: f.severity_rank).severity if raised else None
        also = sorted({f"{f.rule} ({f.severity})" for f in mine if f.rule != item.event.rule})
        outcomes.append(
            Outcome(
                item.event.name,
                item.event.rule,
                item.event.expected,
                item.patient,
                item.first,
                severity,
                also,
            )
        )
    return outcomes


# ---- the report ---------------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.2f}"


def markdown(result: Result) -> str:
    o = result.options
    title = {
        "a": 'Variant a: stable cohort, every red-flag answer "no"',
        "b": "Variant b: the stable cohort with the scripted true events",
    }[result.variant]
    counted = result.counted()
    lines = [
        f"#### {title}",
        "",
        f"{o.patients:,} patients x {o.days} days (after {o.warmup} days of warm-up), seed {o.seed}, "
        f"triage {o.triage}: {result.check_ins:,} check-ins and {len(counted):,} alerts in the counted "
        f"window ({result.entries:,} entries stored in all; replay {result.seconds:.0f} s).",
        "",
        "| rule | urgent | high | routine | per 100 check-ins |",
        "|---|---:|---:|---:|---:|",
    ]
    table = result.by_rule()
    for rule in (*RULES, *sorted(set(table) - set(RULES))):
        counts = table.get(rule, Counter())
        total = sum(counts.values())
        cells = " | ".join(str(counts.get(s, 0)) for s in SEVERITIES)
        lines.append(f"| {rule} | {cells} | {_n(result.per_100(total))} |")
    totals = [result.severity_total(s) for s in SEVERITIES]
    lines.append(f"| **all** | {' | '.join(str(t) for t in totals)} | {_n(result.per_100(sum(totals)))} |")
    lines.append(
        f"| **per 100 check-ins** | {' | '.join(_n(result.per_100(t)) for t in totals)} | "
        f"{_n(result.per_100(sum(totals)))} |"
    )
    weeks = o.patients * result.weeks()
    flagged = result.patient_weeks_flagged()
    high = result.per_100(result.severity_total("high"))
    urgent = result.severity_total("urgent")
    lines += [
        "",
        f"- urgent alerts per 500 patients per day: **{_n(result.urgent_per_500_per_day())}** ({urgent} "
        "urgent outbox events, flag.created/escalated/reopened; each is one webhook per subscribed endpoint)",
        f"- patient-weeks with a high or urgent alert: **{100 * flagged / weeks:.1f}%** ({flagged:,} of "
        f"{weeks:,}); patients with one: {result.patients_flagged():,} of {o.patients:,}",
    ]
    if result.variant == "a":
        lines.append(
            f"- targets: no urgent alert without a red-flag answer: {'yes' if urgent == 0 else '**NO**'} "
            f"({urgent}); at most 1 high alert per 100 check-ins: {'yes' if high <= 1 else '**NO**'} "
            f"({_n(high)})"
        )
    if result.refused:
        lines.append(
            f"- **entries refused: {sum(result.refused.values())}** ({result.refused.most_common(3)})"
        )
    if result.outcomes:
        lines += [
            "",
            "| scripted event | rule | CLINICAL.md | raised | also raised by it |",
            "|---|---|---|---|---|",
        ]
        for out in result.outcomes:
            if out.raised is None:
                raised = "**missing**"
            elif out.raised != out.expected:
                raised = f"{out.raised} (**not {out.expected}**)"
            else:
                raised = out.raised
            lines.append(
                f"| {out.name} | {out.rule} | {out.expected} | {raised} | {', '.join(out.also) or '-'} |"
            )
        missing = [f"{o.rule} ({o.name})" for o in result.outcomes if o.raised is None]
        wrong = [f"{o.rule} ({o.name})" for o in result.outcomes if o.raised not in (None, o.expected)]
        placed = {o.rule for o in result.outcomes}
        unplaced = [r for r in RULES if r not in placed]
        lines.append("")
        lines.append(f"- events their rule did not flag: {'; '.join(missing) or 'none'}")
        lines.append(f"- events flagged at another severity than CLINICAL.md's: {'; '.join(wrong) or 'none'}")
        if result.left_out:
            lines.append(f"- events not sent: {'; '.join(result.left_out)}")
        if unplaced:
            lines.append(
                f"- rules with no event placed (no patient suited, or too few days): {', '.join(unplaced)}"
            )
    return "\n".join(lines) + "\n"


# ---- the command ------------------------------------------------------------------------------------


async def run_variant(config: BenchConfig, options: Options, variant: str, keep: bool) -> Result:
    database = await pg.create(config)
    try:
        pg.migrate(config, database, dict(os.environ))
        settings = Settings(database_url=database.app_url, db_pool_size=options.concurrency + 2)
        engine = create_engine(settings)
        try:
            events = cohort.SCRIPTED_EVENTS if variant == "b" else ()
            return await replay(
                create_session_factory(engine), settings, options, variant, events, progress=True
            )
        finally:
            await engine.dispose()
    finally:
        if keep:
            print(f"kept {database.name}", file=sys.stderr)
        else:
            await pg.drop(config, database)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=Options.patients)
    parser.add_argument("--days", type=int, default=Options.days, help="days counted")
    parser.add_argument(
        "--warmup", type=int, default=Options.warmup, help="days replayed before, not counted"
    )
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--variant", choices=("a", "b", "both"), default="both")
    parser.add_argument("--triage", choices=("daily", "none"), default=Options.triage)
    parser.add_argument("--concurrency", type=int, default=Options.concurrency, help="patients at once")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch databases")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="where burden.md/json go")
    args = parser.parse_args(argv)
    options = Options(args.patients, args.days, args.warmup, args.seed, args.triage, args.concurrency)
    config = BenchConfig.from_env()
    variants = ["a", "b"] if args.variant == "both" else [args.variant]

    async def run() -> list[Result]:
        return [await run_variant(config, options, v, args.keep_db) for v in variants]

    started = time.perf_counter()
    results = asyncio.run(run())
    command = " ".join(["python -m bench.burden", *(argv if argv is not None else sys.argv[1:])]).strip()
    report = f"Command: `{command}` ({time.perf_counter() - started:.0f} s in all)\n\n" + "\n".join(
        markdown(r) for r in results
    )
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "burden.md").write_text(report)
    (args.out / "burden.json").write_text(json.dumps([r.summary() for r in results], indent=2, default=str))
    if any(r.refused for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
