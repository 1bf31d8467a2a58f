"""Who is in the bench database: one organization, providers with their panels, patients with regimens.

Rows are built here as plain tuples in the column order `bench.copyload` writes them, so tens of
thousands of people load with COPY in a second. Everyone gets a token family, so the bench can mint
access tokens for them without an Argon2 sign-in per person.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ORGANIZATION_NAME = "Bench Clinic Network"
EMAIL_DOMAIN = "bench.symptrack.test"
PASSWORD = "bench-password"  # every bench account's password; bench data only
MEDICATION = "gabapentin"
DOSE_MG = 300.0
# The prescribed maximum: the history (3 x 300 mg a day) plus what the write scenarios add to a day
# stays at or under it, so a normal entry raises no dose_above_max flag.
MAX_DAILY_MG = 1800.0
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
# Titration: twice a day at first, three times a day later (CLINICAL.md: gabapentin for anxiety).
TWICE_A_DAY = ((time(8, 0), DOSE_MG), (time(20, 0), DOSE_MG))
THREE_TIMES_A_DAY = ((time(8, 0), DOSE_MG), (time(14, 0), DOSE_MG), (time(20, 0), DOSE_MG))


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from the bench's seeded generator (reproducible, and faster than uuid4)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass(frozen=True)
class RegimenSpan:
    start: date
    end: date | None
    schedule: tuple[tuple[time, float], ...]

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Behaviour:
    """How faithfully a patient logs: drawn once per patient, so the population varies."""

    adherence: float
    check_in_rate: float
    symptom_rate: float
    anxiety_baseline: int


@dataclass(frozen=True)
class BenchPatient:
    index: int
    patient_id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    provider_index: int
    timezone: str
    regimens: tuple[RegimenSpan, ...]
    behaviour: Behaviour
    # Local days whose doses a write scenario sends (build's `doses_sent_later`): the history logs none.
    doses_sent_later: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def schedule_on(self, day: date) -> tuple[tuple[time, float], ...]:
        for regimen in reversed(self.regimens):
            if regimen.covers(day):
                return regimen.schedule
        return ()

    def logged_doses_on(self, day: date) -> tuple[tuple[time, float], ...]:
        """The doses the history logs on a day: the schedule's, but on a day a scenario sends them."""
        return () if day in self.doses_sent_later else self.schedule_on(day)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()


@dataclass(frozen=True)
class BenchUser:
    user_id: uuid.UUID
    family_id: uuid.UUID
    email: str


@dataclass
class Population:
    organization_id: uuid.UUID
    providers: list[BenchUser]
    patients: list[BenchPatient]
    created_at: datetime
    rows: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)


def build(
    patients: int,
    per_provider: int,
    history_days: int,
    password_hash: str,
    seed: int = 7,
    doses_sent_later: Iterable[range] = (),
) -> Population:
    """Everyone, with regimens that reach back over `history_days` (the longest history the run loads).

    `doses_sent_later`: days back from each patient's local today whose doses a write scenario sends
    (a check-in with the day's doses, a phone's backlog synced): the history leaves them out, as the
    server would not have them yet, so the day's total is the prescribed one, not twice it (which
    would raise above_prescribed on every request and measure the flag's path instead of the plain one)."""
    days_back = sorted({back for days in doses_sent_later for back in days})
    rng = random.Random(seed)
    now = datetime.now(UTC)
    today = now.date()
    organization_id = new_uuid(rng)
    population = Population(organization_id, [], [], now)
    users: list[tuple[object, ...]] = []
    families: list[tuple[object, ...]] = []

    def user(email: str, name: str, role: str) -> BenchUser:
        found = BenchUser(new_uuid(rng), new_uuid(rng), email)
        users.append((found.user_id, organization_id, email, name, role, password_hash, True, now))
        families.append((found.family_id, found.user_id, now))
        return found

    provider_count = max(1, -(-patients // per_provider))
    for k in range(provider_count):
        population.providers.append(user(f"provider{k}@{EMAIL_DOMAIN}", f"Dr. Bench {k}", "provider"))
    patient_rows: list[tuple[object, ...]] = []
    care_team: list[tuple[object, ...]] = []
    regimen_rows: list[tuple[object, ...]] = []
    first_day = today - timedelta(days=history_days + 14)
    for i in range(patients):
        account = user(f"patient{i}@{EMAIL_DOMAIN}", f"Patient {i:05d}", "patient")
        switch = today - timedelta(days=120 + rng.randrange(120))
        regimens = (
            RegimenSpan(first_day, switch - timedelta(days=1), TWICE_A_DAY),
            RegimenSpan(switch, None, THREE_TIMES_A_DAY),
        )
        timezone = TIMEZONES[i % len(TIMEZONES)]
        local_today = now.astimezone(ZoneInfo(timezone)).date()
        patient = BenchPatient(
            index=i,
            patient_id=new_uuid(rng),
            user_id=account.user_id,
            family_id=account.family_id,
            provider_index=i // per_provider,
            timezone=timezone,
            regimens=regimens,
            behaviour=Behaviour(
                adherence=rng.uniform(0.75, 0.98),
                check_in_rate=rng.uniform(0.6, 0.95),
                symptom_rate=rng.uniform(0.05, 0.3),
                anxiety_baseline=rng.randrange(3, 8),
            ),
            doses_sent_later=frozenset(local_today - timedelta(days=back) for back in days_back),
        )
        population.patients.append(patient)
        patient_rows.append(
            (
                patient.patient_id,
                account.user_id,
                organization_id,
                patient.timezone,
                1940 + rng.randrange(65),
                rng.random() < 0.15,
                None,
                now,
                now,
            )
        )
        care_team.append((patient.patient_id, population.providers[patient.provider_index].user_id, now))
        for regimen in regimens:
            schedule = json.dumps(
                [{"time": t.strftime("%H:%M"), "dose_mg": mg} for t, mg in regimen.schedule]
            )
            regimen_rows.append(
                (
                    new_uuid(rng),
                    patient.patient_id,
                    MEDICATION,
                    "25480",
                    schedule,
                    regimen.start,
                    regimen.end,
                    MAX_DAILY_MG,
                    False,
                    "anxiety",
                    now,
                    population.providers[patient.provider_index].user_id,
                )
            )
    population.rows = {
        "organization": [(organization_id, ORGANIZATION_NAME, now)],
        "user_account": users,
        "token_family": families,
        "patient": patient_rows,
        "care_team_member": care_team,
        "regimen": regimen_rows,
    }
    return population


COLUMNS: dict[str, tuple[str, ...]] = {
    "organization": ("id", "name", "created_at"),
    "user_account": (
        "id",
        "organization_id",
        "email",
        "name",
        "role",
        "password_hash",
        "is_active",
        "created_at",
    ),
    "token_family": ("id", "user_id", "created_at"),
    "patient": (
        "id",
        "user_id",
        "organization_id",
        "timezone",
        "birth_year",
        "takes_opioids_or_benzodiazepines",
        "creatinine_clearance_ml_min",
        "created_at",
        "updated_at",
    ),
    "care_team_member": ("patient_id", "provider_id", "created_at"),
    "regimen": (
        "id",
        "patient_id",
        "medication",
        "rxnorm",
        "schedule",
        "start_date",
        "end_date",
        "max_daily_mg",
        "taper",
        "indication",
        "created_at",
        "created_by",
    ),
}
