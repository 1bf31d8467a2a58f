"""Reading the audit trail (admins, their organization only)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Role
from models.audit import AuditEvent
from models.audit_schemas import AuditEventPublic
from models.common import Page
from services.accounts.access import Caller, patient_in_scope, require_role
from services.localtime import utc
from services.pagination import Cursor, page_of


async def list_events(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None, limit: int, cursor: str | None
) -> Page[AuditEventPublic]:
    """Oldest first. With a patient, every access to their data, by anyone, including refused ones
    (a patient of another organization is not found); without, the organization's whole trail."""
    require_role(caller, Role.admin)
    statement = select(AuditEvent)
    if patient_id is not None:
        await patient_in_scope(session, caller, str(patient_id))
        statement = statement.where(col(AuditEvent.patient_id) == patient_id)
    else:
        statement = statement.where(col(AuditEvent.organization_id) == caller.organization_id)
    rows, next_cursor = await page_of(
        session,
        statement,
        Cursor.decode(cursor),
        limit,
        time_column=col(AuditEvent.occurred_at),
        id_column=col(AuditEvent.id),
        cursor_of=lambda row: Cursor(row[0].occurred_at, row[0].id),
    )
    items = [
        AuditEventPublic(
            id=e.id,
            occurred_at=utc(e.occurred_at),
            actor_user_id=e.actor_user_id,
            actor_role=e.actor_role,
            patient_id=e.patient_id,
            target_user_id=e.target_user_id,
            action=e.action,
            outcome=e.outcome,
            status_code=e.status_code,
        )
        for (e,) in rows
    ]
    return Page(items=items, next_cursor=next_cursor)
