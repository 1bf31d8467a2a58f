"""How admins read the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

import models.examples as ex


class AuditEventPublic(BaseModel):
    """One read or write of a patient's data, or an action on an account: who (user and role), which
    patient or account, what (the route template), and how it ended (success, denied, forbidden or
    error)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.AUDIT_EVENT_ID,
                    "occurred_at": ex.CREATED_AT,
                    "actor_user_id": ex.PROVIDER_ID,
                    "actor_role": "provider",
                    "patient_id": ex.PATIENT_ID,
                    "target_user_id": None,
                    "action": "GET /v1/patients/{patient_id}/summary",
                    "outcome": "success",
                    "status_code": 200,
                }
            ]
        }
    )

    id: uuid.UUID
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_role: str | None
    patient_id: uuid.UUID | None
    target_user_id: uuid.UUID | None = Field(
        default=None, description="The account an account action (deactivate, reactivate) was done to"
    )
    action: str
    outcome: str
    status_code: int | None
