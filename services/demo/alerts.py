"""The demo organization's webhook endpoint for a local receiver (`symptrack listen`), so a developer
sees the demo's urgent flags arrive signed. Made through the same service an admin's POST uses: the
URL checks (https, no loopback or private address unless the operator allowed them) apply as ever."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Role, User
from models.flags import Severity
from models.webhooks import FLAG_EVENTS, EndpointCreate, WebhookEndpoint
from services.accounts.access import Caller
from services.accounts.users import find_organization_by_name
from services.alerting import webhook_secrets
from services.alerting.endpoints import create_endpoint
from services.demo.loader import DEMO_ADMIN_EMAIL, DEMO_ORGANIZATION
from services.errors import NotFound
from services.settings import Settings

DEMO_EVENTS = list(FLAG_EVENTS)
DEMO_MIN_SEVERITY = Severity.urgent


@dataclass(frozen=True)
class DemoEndpoint:
    created: bool
    url: str
    events: list[str]
    min_severity: str
    secret: str


async def demo_endpoint(session: AsyncSession, settings: Settings, url: str) -> DemoEndpoint | None:
    """The demo organization's endpoint at exactly this URL, with its secret; None when there is none."""
    organization = await find_organization_by_name(session, DEMO_ORGANIZATION)
    if organization is None:
        return None
    endpoint = (
        (
            await session.execute(
                select(WebhookEndpoint)
                .where(
                    col(WebhookEndpoint.organization_id) == organization.id, col(WebhookEndpoint.url) == url
                )
                .order_by(col(WebhookEndpoint.created_at))
            )
        )
        .scalars()
        .first()
    )
    if endpoint is None:
        return None
    secret = webhook_secrets.decrypt(settings, endpoint.secret)
    return DemoEndpoint(False, endpoint.url, list(endpoint.events), endpoint.min_severity, secret)


async def register_demo_endpoint(session: AsyncSession, settings: Settings, url: str) -> DemoEndpoint:
    """The demo organization's endpoint at `url`: created once, found again on a second run."""
    found = await demo_endpoint(session, settings, url)
    if found is not None:
        return found
    admin = (await session.execute(select(User).where(col(User.email) == DEMO_ADMIN_EMAIL))).scalars().first()
    if admin is None:
        raise NotFound("The demo organization is not loaded: run `symptrack demo` first.")
    caller = Caller(
        user_id=admin.id, role=Role.admin, organization_id=admin.organization_id, family_id=uuid.uuid4()
    )
    body = EndpointCreate(
        url=url, events=DEMO_EVENTS, min_severity=DEMO_MIN_SEVERITY, description="symptrack listen (demo)"
    )
    created = await create_endpoint(session, settings, caller, body)
    return DemoEndpoint(True, created.url, created.events, created.min_severity.value, created.secret)
