"""Writing outbox events, in the transaction of the change they announce."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.accounts import Patient
from models.flags import FlagPublic
from models.outbox import OutboxEvent


def flag_webhook_data(patient: Patient, flag: FlagPublic) -> dict[str, object]:
    """The webhook `data`: the flag without the clinician's note; no name or free text of the patient
    leaves in a webhook (API.md). Receivers fetch details through the API."""
    return {"flag": flag.model_dump(mode="json", exclude={"note"}), "patient_id": str(patient.id)}


async def flag_event(
    session: AsyncSession, event_type: str, patient: Patient, flag: FlagPublic
) -> OutboxEvent:
    event = OutboxEvent(
        type=event_type,
        organization_id=patient.organization_id,
        severity=flag.severity.value,
        data=flag_webhook_data(patient, flag),
    )
    session.add(event)
    await session.flush()
    return event
