"""Demo data: an organization with an admin, a provider and patients, to try the API at once.

Grows as features land: each feature adds its own realistic history here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from models.accounts import Role
from services.accounts import (
    create_organization,
    create_patient,
    create_user,
    find_organization_by_name,
)

DEMO_ORGANIZATION = "Demo Clinic"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented demo credential, development data only
DEMO_ADMIN_EMAIL = "admin@demo.symptrack.test"
DEMO_PROVIDER_EMAIL = "provider@demo.symptrack.test"

_PATIENTS = [
    ("Alex Rivera", "America/New_York", 1984),
    ("Sam Okafor", "Europe/London", 1991),
    ("Jordan Lee", "America/Los_Angeles", 1976),
    ("Maria Rossi", "Europe/Rome", 1968),
    ("Priya Nair", "Asia/Kolkata", 1995),
    ("Tom Becker", "Europe/Berlin", 1959),
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


async def load_demo(session: AsyncSession, progress: Callable[[int], None] | None = None) -> DemoSummary:
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
    for name, timezone, birth_year in _PATIENTS:
        await create_patient(
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
        tick(1)
    return DemoSummary(**{**summary.__dict__, "created": True})


def demo_steps() -> int:
    return 2 + len(_PATIENTS)
