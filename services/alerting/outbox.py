"""Writing outbox events and their deliveries, in the transaction of the change they announce."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient
from models.flags import FlagPublic, Severity
from models.outbox import OutboxEvent
from models.webhooks import WebhookDelivery, WebhookEndpoint
from services.platform import wakeup


def flag_webhook_data(patient: Patient, flag: FlagPublic) -> dict[str, object]:
    """The webhook `data`: the flag with `observed_at`, without the clinician's notes (its note and
    history) and without the patient's name; no name or free text of the patient leaves in a webhook
    (API.md). Receivers fetch details through the API."""
    flag_data = flag.model_dump(mode="json", exclude={"note", "history", "patient_name"})
    return {"flag": flag_data, "patient_id": str(patient.id)}


async def flag_event(
    session: AsyncSession, event_type: str, patient: Patient, flag: FlagPublic
) -> OutboxEvent:
    """The event, and a delivery for every enabled endpoint of the organization that wants it."""
    event = OutboxEvent(
        type=event_type,
        organization_id=patient.organization_id,
        severity=flag.severity.value,
        data=flag_webhook_data(patient, flag),
    )
    session.add(event)
    await session.flush()
    endpoints = await session.execute(
        select(WebhookEndpoint).where(
            col(WebhookEndpoint.organization_id) == patient.organization_id, col(WebhookEndpoint.enabled)
        )
    )
    deliveries = [
        WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event.id,
            event_type=event_type,
            urgent=flag.severity == Severity.urgent,
        )
        for endpoint in endpoints.scalars()
        if event_type in endpoint.events and flag.severity.rank >= Severity(endpoint.min_severity).rank
    ]
    if deliveries:
        session.add_all(deliveries)
        await session.flush()
        await wakeup.announce(session)
    return event


async def ping_event(session: AsyncSession, endpoint: WebhookEndpoint) -> tuple[OutboxEvent, WebhookDelivery]:
    event = OutboxEvent(
        type="webhook.ping",
        organization_id=endpoint.organization_id,
        data={"endpoint_id": str(endpoint.id)},
    )
    session.add(event)
    await session.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, event_type=event.type)
    session.add(delivery)
    await session.flush()
    await wakeup.announce(session)
    return event, delivery
