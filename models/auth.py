"""Sign-in state: refresh-token families, refresh tokens, enrollment codes and login throttling.

Secrets (refresh tokens, enrollment codes) are stored only as SHA-256 hashes: a database leak does not
hand out sessions or enrollments.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, ForeignKey, String, Uuid
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, created_at_field, id_field
from models.types import Text


class TokenFamily(SQLModel, table=True):
    """One sign-in and every refresh token rotated from it. Revoking it ends the whole session,
    access tokens included (they carry the family id and are checked against it)."""

    __tablename__ = "token_family"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Why it was revoked: "logout", "reuse" (a spent refresh token came back) or "admin".
    revoked_reason: str | None = Field(default=None, max_length=32)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"

    id: uuid.UUID = id_field()
    family_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("token_family.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Set when it is exchanged for a new pair; a spent token presented again revokes its family.
    spent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EnrollmentCode(SQLModel, table=True):
    """A one-time code a provider hands a patient so they can set their password."""

    __tablename__ = "enrollment_code"

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    code_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = created_at_field()
    created_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL"))
    )
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TokenPair(BaseModel):
    """A signed-in session: a short-lived access token (send it as `Authorization: Bearer ...`) and
    the refresh token that gets the next pair."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
                    "token_type": "bearer",
                    "expires_in": 900,
                    "refresh_token": "6yxauCon5JRP8ExoBBwADR3bQGvOxpfEvJCOs4bcrz4",
                    "device_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXAiOiJkZXZpY2UifQ.ZGV2aWNl",
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    refresh_token: str
    device_token: str = Field(
        description="Keep it on the device and send it with later sign-ins (`device_token` form field): "
        "that device is then throttled on its own, so failed guesses by others can't lock it out."
    )


class RefreshRequest(BaseModel):
    """The refresh token of the current pair; it is spent by this exchange."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "6yxauCon5JRP8ExoBBwADR3bQGvOxpfEvJCOs4bcrz4"}]}
    )

    refresh_token: Text = Field(min_length=1, max_length=200)


class EnrollRequest(BaseModel):
    """A patient's one-time enrollment code (from their provider) and the password they choose."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"enrollment_code": "K7QM-3XPD-9RWT", "password": "long-passphrase-42"}]
        }
    )

    enrollment_code: Text = Field(min_length=1, max_length=64)
    password: Text = Field(min_length=1, max_length=256)
