"""Demo data: an organization with an admin, a provider and patients with some weeks of history.

The history goes through the same services as the phone's entries, so it is graded and dated
exactly as real data would be. Grows as features land.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from models.accounts import Patient, Role
from models.base import utcnow
from models.entry_schemas import CheckInCreate, CheckInDose, CheckInSymptom
from models.regimens import RegimenCreate, ScheduledDose
from services.accounts.access import Caller
from services.accounts.users import (
    create_organization,
    create_patient,
    create_user,
    find_organization_by_name,
)
from services.entries import kinds, recorder
from services.localtime import local_date, local_instant
from services.prescribing import regimens
from services.settings import Settings

DEMO_ORGANIZATION = "Demo Clinic"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented demo credential, development data only
DEMO_ADMIN_EMAIL = "admin@demo.symptrack.test"
DEMO_PROVIDER_EMAIL = "provider@demo.symptrack.test"
DEMO_DAYS = 28

_PATIENTS = [
    ("Alex Rivera", "America/New_York", 1984),
    ("Sam Okafor", "Europe/London", 1991),
    ("Jordan Lee", "America/Los_Angeles", 1976),
    ("Maria Rossi", "Europe/Rome", 1968),
    ("Priya Nair", "Asia/Kolkata", 1995),
    ("Tom Becker", "Europe/Berlin", 1959),
]
_SCHEDULE = [ScheduledDose(time="08:00", dose_mg=300), ScheduledDose(time="20:00", dose_mg=300)]
# Side effects gabapentin is known for, as a patient might report them on a bad day.
_SIDE_EFFECTS = [
    ("dizziness", {"severity": 1, "interference": 1}),
    ("drowsiness", {"severity": 2, "interference": 1}),
    ("fatigue", {"severity": 1, "interference": 0}),
    ("dry_mouth", {"severity": 1}),
    ("nausea", {"frequency": 1, "severity": 1}),
]


@dataclass(frozen=True)
class DemoSummary:
    created: bool
    organization: str
    admin_email: str
    provider_email: str
    patient_emails: list[str]
    password: str


def _patient_email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@demo.symptrack.test"


def demo_steps() -> int:
    return 2 + len(_PATIENTS) * (1 + DEMO_DAYS)


async def load_demo(
    session: AsyncSession, settings: Settings, progress: Callable[[int], None] | None = None
) -> DemoSummary:
    """Create the demo organization unless it exists. `progress(n)` is told of each step done."""
    summary = DemoSummary(
        created=False,
        organization=DEMO_ORGANIZATION,
        admin_email=DEMO_ADMIN_EMAIL,
        provider_email=DEMO_PROVIDER_EMAIL,
        patient_emails=[_patient_email(name) for name, _, _ in _PATIENTS],
        password=DEMO_PASSWORD,
    )
    if await find_organization_by_name(session, DEMO_ORGANIZATION) is not None:
        return summary
    rng = random.Random(20261126)  # noqa: S311 - reproducible demo data, not security
    tick = progress or (lambda _n: None)
    organization = await create_organization(session, DEMO_ORGANIZATION)
    await create_user(
        session,
        organization_id=organization.id,
        email=DEMO_ADMIN_EMAIL,
        name="Dana Admin",
        role=Role.admin,
        password=DEMO_PASSWORD,
    )
    provider = await create_user(
        session,
        organization_id=organization.id,
        email=DEMO_PROVIDER_EMAIL,
        name="Dr. Robin Chen",
        role=Role.provider,
        password=DEMO_PASSWORD,
    )
    tick(2)
    staff = Caller(
        user_id=provider.id, role=Role.provider, organization_id=organization.id, family_id=uuid.uuid4()
    )
    for name, timezone, birth_year in _PATIENTS:
        patient = await create_patient(
            session,
            organization_id=organization.id,
            email=_patient_email(name),
            name=name,
            timezone=timezone,
            birth_year=birth_year,
            provider_ids=[provider.id],
            takes_opioids_or_benzodiazepines=rng.random() < 0.2,
            creatinine_clearance_ml_min=rng.choice([None, None, 95.0, 72.0, 48.0]),
            password=DEMO_PASSWORD,
        )
        today = local_date(utcnow(), timezone)
        start = today - timedelta(days=DEMO_DAYS)
        await regimens.create_regimen(
            session,
            staff,
            patient,
            RegimenCreate(schedule=_SCHEDULE, start_date=start, max_daily_mg=1800),
        )
        tick(1)
        for offset in range(DEMO_DAYS):
            await _demo_day(session, settings, staff, patient, start + timedelta(days=offset), offset, rng)
            tick(1)
    return DemoSummary(**{**summary.__dict__, "created": True})


async def _demo_day(
    session: AsyncSession,
    settings: Settings,
    staff: Caller,
    patient: Patient,
    day: date,
    offset: int,
    rng: random.Random,
) -> None:
    """One day of a patient's life on gabapentin: doses (some late or missed), a rating, now and then
    a mild side effect, a GAD-7 every two weeks that eases as the weeks go by."""
    if rng.random() < 0.08:
        return  # no check-in that day
    doses = []
    for slot in _SCHEDULE:
        hour, minute = map(int, slot.time.split(":"))
        scheduled = local_instant(day, time(hour, minute), patient.timezone)
        skipped = rng.random() < 0.06
        taken = scheduled + timedelta(minutes=rng.choice([-20, -5, 0, 10, 25, 45, 95]))
        if local_date(taken, patient.timezone) != day:
            taken = scheduled
        doses.append(
            CheckInDose(
                taken_at=taken,
                dose_mg=slot.dose_mg,
                scheduled_for=scheduled,
                status="skipped" if skipped else "taken",
            )
        )
    symptoms = []
    if rng.random() < 0.3:
        code, attributes = rng.choice(_SIDE_EFFECTS)
        reported = local_instant(day, time(21, 30), patient.timezone)
        symptoms.append(CheckInSymptom(reported_at=reported, code=code, **attributes))
    weeks_in = offset // 7
    gad7 = None
    if offset % settings.gad7_interval_days == 0:
        level = max(0, 2 - weeks_in // 2)
        gad7 = [min(3, max(0, level + rng.choice([-1, 0, 0, 1]))) for _ in range(7)]
    submitted = local_instant(day, time(21, 45), patient.timezone)
    check_in = CheckInCreate(
        id=uuid.uuid4(),
        date=day,
        submitted_at=submitted,
        anxiety_rating=max(0, min(10, 7 - weeks_in + rng.choice([-1, 0, 1]))),
        gad7=gad7,
        doses=doses,
        symptoms=symptoms,
    )
    owner = Caller(
        user_id=patient.user_id,
        role=Role.patient,
        organization_id=patient.organization_id,
        family_id=staff.family_id,
        patient_id=patient.id,
    )
    await recorder.record(recorder.context(session, settings, owner, patient), kinds.CHECK_IN, check_in)
