"""How admins read the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class AuditEventPublic(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_role: str | None
    patient_id: uuid.UUID | None
    action: str
    outcome: str
    status_code: int | None
