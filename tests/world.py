"""A small world of people for access tests: two organizations, their staff and patients.

People are created straight through the services (no HTTP, no password hashing) and given real
access tokens, so tests start from a signed-in state quickly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI

from models.accounts import Role
from models.base import utcnow
from services.accounts import users as accounts
from services.accounts.auth import start_session
from services.database import session_scope


@dataclass
class Person:
    name: str
    user_id: uuid.UUID
    role: Role
    access_token: str
    refresh_token: str
    patient_id: uuid.UUID | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class World:
    people: dict[str, Person] = field(default_factory=dict)
    organizations: dict[str, uuid.UUID] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]


async def build_world(app: FastAPI) -> World:
    """Organization A: admin_a; provider_a (cares for patient_a); provider_a2 (cares for patient_a2);
    patients patient_a and patient_a2. Organization B: admin_b, provider_b, patient_b."""
    world = World()
    settings = app.state.settings
    async with session_scope(app.state.session_factory) as session:

        async def person(name: str, org: uuid.UUID, role: Role, **patient: object) -> Person:
            email = f"{name}@{'a' if org == world.organizations['A'] else 'b'}.example"
            if role == Role.patient:
                record = await accounts.create_patient(
                    session,
                    organization_id=org,
                    email=email,
                    name=name.replace("_", " ").title(),
                    timezone="America/New_York",
                    **patient,  # type: ignore[arg-type]
                )
                user_id, patient_id = record.user_id, record.id
            else:
                user = await accounts.create_user(
                    session, organization_id=org, email=email, name=name, role=role, password=None
                )
                user_id, patient_id = user.id, None
            pair = await start_session(session, settings, user_id, utcnow())
            found = Person(name, user_id, role, pair.access_token, pair.refresh_token, patient_id)
            world.people[name] = found
            return found

        for label in ("A", "B"):
            world.organizations[label] = (await accounts.create_organization(session, f"Clinic {label}")).id
        org_a, org_b = world.organizations["A"], world.organizations["B"]
        await person("admin_a", org_a, Role.admin)
        provider_a = await person("provider_a", org_a, Role.provider)
        provider_a2 = await person("provider_a2", org_a, Role.provider)
        await person("patient_a", org_a, Role.patient, provider_ids=[provider_a.user_id])
        await person("patient_a2", org_a, Role.patient, provider_ids=[provider_a2.user_id])
        await person("admin_b", org_b, Role.admin)
        provider_b = await person("provider_b", org_b, Role.provider)
        await person("patient_b", org_b, Role.patient, provider_ids=[provider_b.user_id])
    return world
