"""Organizations, the people in them, patient profiles and care teams."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt
from pydantic import Field as PydanticField
from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Uuid
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, created_at_field, id_field, utcnow
from models.types import Number, Text, VisibleText


class Role(StrEnum):
    admin = "admin"
    provider = "provider"
    patient = "patient"


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: uuid.UUID = id_field()
    name: str = Field(max_length=200)
    created_at: datetime = created_at_field()


class User(SQLModel, table=True):
    """Anyone who signs in. A patient's user has no password until they enroll."""

    __tablename__ = "user_account"
    __table_args__ = (CheckConstraint("role IN ('admin', 'provider', 'patient')", name="role"),)

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("organization.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    # Stored lower-cased, so sign-in is case-insensitive and unique across the whole service.
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    name: str = Field(max_length=200)
    role: str = Field(sa_column=Column(String(16), nullable=False))
    password_hash: str | None = Field(default=None, max_length=255)
    is_active: bool = True
    created_at: datetime = created_at_field()


class Patient(SQLModel, table=True):
    """The clinical profile of a patient user: what rules and local dates depend on."""

    __tablename__ = "patient"
    __table_args__ = (
        CheckConstraint(
            "birth_year IS NULL OR (birth_year >= 1900 AND birth_year <= 2100)", name="birth_year"
        ),
        CheckConstraint(
            "creatinine_clearance_ml_min IS NULL OR creatinine_clearance_ml_min >= 0",
            name="creatinine_clearance",
        ),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    organization_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("organization.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    timezone: str = Field(max_length=64)
    birth_year: int | None = None
    takes_opioids_or_benzodiazepines: bool = False
    creatinine_clearance_ml_min: float | None = None
    created_at: datetime = created_at_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CareTeamMember(SQLModel, table=True):
    """A provider who cares for a patient. A provider sees exactly the patients listed here."""

    __tablename__ = "care_team_member"

    patient_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True)
    )
    provider_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    created_at: datetime = created_at_field()


# ---- request and response schemas -------------------------------------------------------------

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# A data-sanity bound, not a clinical threshold (CLINICAL.md only tells >= 60 from below): it refuses
# typing slips such as 1e308 or an extra zero.
MAX_CREATININE_CLEARANCE_ML_MIN = 250


class Me(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    organization_id: uuid.UUID
    patient_id: uuid.UUID | None = None


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Text = PydanticField(pattern=EMAIL_PATTERN, max_length=320)
    name: VisibleText = PydanticField(min_length=1, max_length=200)
    password: Text = PydanticField(min_length=1, max_length=256)


class ProviderPublic(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    organization_id: uuid.UUID
    created_at: datetime


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Text = PydanticField(pattern=EMAIL_PATTERN, max_length=320)
    name: VisibleText = PydanticField(min_length=1, max_length=200)
    timezone: Text = PydanticField(min_length=1, max_length=64, description="IANA time zone")
    birth_year: StrictInt | None = PydanticField(default=None, ge=1900, le=2100)
    provider_ids: list[uuid.UUID] | None = None
    takes_opioids_or_benzodiazepines: StrictBool = False
    creatinine_clearance_ml_min: Number | None = PydanticField(
        default=None, ge=0, le=MAX_CREATININE_CLEARANCE_ML_MIN
    )


class PatientUpdate(BaseModel):
    """Fields a provider or admin may change. A patient may send only `timezone`."""

    model_config = ConfigDict(extra="forbid")

    name: VisibleText | None = PydanticField(default=None, min_length=1, max_length=200)
    timezone: Text | None = PydanticField(default=None, min_length=1, max_length=64)
    birth_year: StrictInt | None = PydanticField(default=None, ge=1900, le=2100)
    provider_ids: list[uuid.UUID] | None = None
    takes_opioids_or_benzodiazepines: StrictBool | None = None
    creatinine_clearance_ml_min: Number | None = PydanticField(
        default=None, ge=0, le=MAX_CREATININE_CLEARANCE_ML_MIN
    )


class PatientPublic(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    name: str
    timezone: str
    birth_year: int | None
    takes_opioids_or_benzodiazepines: bool
    creatinine_clearance_ml_min: float | None
    provider_ids: list[uuid.UUID]
    enrolled: bool = PydanticField(description="The patient has set a password and can sign in")
    created_at: datetime
    updated_at: datetime


class PatientCreated(PatientPublic):
    enrollment_code: str = PydanticField(description="Give this to the patient; it is shown only once")
    enrollment_code_expires_at: datetime
