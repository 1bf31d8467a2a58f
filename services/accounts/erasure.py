"""Erasing a patient where the law requires it (`symptrack erase-patient`): everything recorded about
them and their identity, in one transaction, leaving one audit row that says it happened.

Removed: their entries (check-ins, doses, anxiety scores, symptom reports), flags (their history is in
the row), regimens, care-team links, enrollment codes, the patient record, the user account and its
sessions (token families and refresh tokens), and every outbox event that carries their data (flag
alerts name the patient and the flag), delivered or not, with its deliveries and attempts (a
receiver's answer may echo the payload).

Kept: the audit trail. Its rows hold ids, an action (a route template) and an outcome, no health data
and no name; HIPAA wants the record of who accessed what kept six years (45 CFR 164.312(b),
164.316(b)(2)), and once the patient record is gone the ids point at nothing. The erasure itself is one
more row: the admin who ran it, the organization, the now meaningless patient and user ids.

Sessions end at once: the user's cached callers are dropped in this process as the transaction commits
and, on PostgreSQL, in every API process by the NOTIFY that commits with it (caller_cache); their
tokens then find no session. Device tokens are signed, not stored: they name an account that no longer
exists. Sign-in throttle counters (Redis or memory) are keyed by hashes and expire within their window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import CareTeamMember, Patient, Role, User
from models.audit import AuditEvent
from models.auth import EnrollmentCode, RefreshToken, TokenFamily
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import Flag
from models.outbox import OutboxEvent
from models.regimens import Regimen
from models.webhooks import WebhookAttempt, WebhookDelivery
from services.accounts import caller_cache
from services.errors import NotFound

# The audit trail's action for an erasure: not a route, a command.
ERASE = "symptrack erase-patient"


@dataclass
class Erased:
    """How many rows of each kind went."""

    check_ins: int = 0
    doses: int = 0
    anxiety_scores: int = 0
    symptom_reports: int = 0
    flags: int = 0
    regimens: int = 0
    care_team_links: int = 0
    enrollment_codes: int = 0
    sessions: int = 0
    refresh_tokens: int = 0
    outbox_events: int = 0
    webhook_deliveries: int = 0
    webhook_attempts: int = 0
    patients: int = 0
    user_accounts: int = 0

    def lines(self) -> list[str]:
        return [f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)]


async def erase_patient(session: AsyncSession, patient_id: uuid.UUID, operator_email: str) -> Erased:
    """Erase the patient in the session's transaction (the caller commits). `operator_email` must be an
    active admin of the patient's organization: the audit row names who did it."""
    patient = (
        await session.execute(select(Patient).where(col(Patient.id) == patient_id).with_for_update())
    ).scalar_one_or_none()
    if patient is None:
        raise NotFound(f"No patient {patient_id}.")
    operator = (
        await session.execute(
            select(User).where(
                col(User.email) == operator_email.strip().lower(),
                col(User.organization_id) == patient.organization_id,
                col(User.role) == Role.admin.value,
                col(User.is_active),
            )
        )
    ).scalar_one_or_none()
    if operator is None:
        raise NotFound("The operator must be an active admin of the patient's organization (their email).")
    user_id = patient.user_id
    erased = Erased()

    async def gone(statement: object) -> int:
        result = await session.execute(statement, execution_options={"synchronize_session": False})  # type: ignore[call-overload]
        return int(result.rowcount or 0)

    # Alerts that carry the patient's data, sent or not: attempts, deliveries, then the events.
    events = select(col(OutboxEvent.id)).where(
        col(OutboxEvent.organization_id) == patient.organization_id,
        OutboxEvent.data["patient_id"].as_string() == str(patient_id),
    )
    deliveries = select(col(WebhookDelivery.id)).where(col(WebhookDelivery.event_id).in_(events))
    erased.webhook_attempts = await gone(
        delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(deliveries))
    )
    erased.webhook_deliveries = await gone(
        delete(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(events))
    )
    erased.outbox_events = await gone(delete(OutboxEvent).where(col(OutboxEvent.id).in_(events)))

    erased.flags = await gone(delete(Flag).where(col(Flag.patient_id) == patient_id))
    # The parts of a check-in point at it: they go first.
    erased.doses = await gone(delete(Dose).where(col(Dose.patient_id) == patient_id))
    erased.anxiety_scores = await gone(delete(AnxietyScore).where(col(AnxietyScore.patient_id) == patient_id))
    erased.symptom_reports = await gone(
        delete(SymptomReport).where(col(SymptomReport.patient_id) == patient_id)
    )
    erased.check_ins = await gone(delete(CheckIn).where(col(CheckIn.patient_id) == patient_id))
    erased.regimens = await gone(delete(Regimen).where(col(Regimen.patient_id) == patient_id))
    erased.care_team_links = await gone(
        delete(CareTeamMember).where(col(CareTeamMember.patient_id) == patient_id)
    )
    erased.enrollment_codes = await gone(
        delete(EnrollmentCode).where(col(EnrollmentCode.patient_id) == patient_id)
    )
    erased.patients = await gone(delete(Patient).where(col(Patient.id) == patient_id))

    families = select(col(TokenFamily.id)).where(col(TokenFamily.user_id) == user_id)
    erased.refresh_tokens = await gone(delete(RefreshToken).where(col(RefreshToken.family_id).in_(families)))
    erased.sessions = await gone(delete(TokenFamily).where(col(TokenFamily.user_id) == user_id))
    erased.user_accounts = await gone(delete(User).where(col(User.id) == user_id))
    await caller_cache.announce(session, caller_cache.USER, user_id)

    session.add(
        AuditEvent(
            actor_user_id=operator.id,
            actor_role=Role.admin.value,
            organization_id=patient.organization_id,
            patient_id=patient_id,
            target_user_id=user_id,
            action=ERASE,
            outcome="success",
        )
    )
    await session.flush()
    return erased
