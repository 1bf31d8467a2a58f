"""Organizations, the people in them, patient profiles and care teams."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt
from pydantic import Field as PydanticField
from pydantic.config import JsonDict
from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Uuid, false
from sqlmodel import Field, SQLModel

import models.examples as ex
from models.base import UTCDateTime, created_at_field, id_field, utcnow
from models.types import Number, Text, VisibleText


class Role(StrEnum):
    """What a user is: an organization's admin, a provider, or a patient."""

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
    # False once an admin deactivates the account (POST /v1/users/{user_id}/deactivate): no sign-in,
    # no refresh, every session revoked. The records stay.
    is_active: bool = True
    deactivated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
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
    # Added by migration 0011 (CLINICAL.md 3, respiratory risk): existing patients get false, as unknown.
    takes_other_cns_depressants: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    has_lung_disease: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
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


# CLINICAL.md 3: the facts that, with age 65 or over, make a patient at respiratory risk.
_OTHER_CNS = (
    "Takes other sedating medicines: other anti-anxiety drugs, sleep medicines, sedating antidepressants "
    "or antihistamines"
)
_LUNG_DISEASE = "Has lung disease: COPD or reduced lung function"

_PATIENT_OUT: JsonDict = {
    "id": ex.PATIENT_ID,
    "user_id": ex.PATIENT_USER_ID,
    "organization_id": ex.ORGANIZATION_ID,
    "email": "alex.rivera@example.org",
    "name": "Alex Rivera",
    "timezone": ex.TIMEZONE,
    "birth_year": 1984,
    "takes_opioids_or_benzodiazepines": False,
    "takes_other_cns_depressants": False,
    "has_lung_disease": False,
    "creatinine_clearance_ml_min": 85.0,
    "provider_ids": [ex.PROVIDER_ID],
    "enrolled": True,
    "active": True,
    "created_at": ex.EARLIER,
    "updated_at": ex.EARLIER,
}


class Me(BaseModel):
    """The signed-in user; `patient_id` is set for a patient (the id `me` stands for)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.PATIENT_USER_ID,
                    "email": "alex.rivera@example.org",
                    "name": "Alex Rivera",
                    "role": "patient",
                    "organization_id": ex.ORGANIZATION_ID,
                    "patient_id": ex.PATIENT_ID,
                }
            ]
        }
    )

    id: uuid.UUID
    email: str
    name: str
    role: Role
    organization_id: uuid.UUID
    patient_id: uuid.UUID | None = None


class ProviderCreate(BaseModel):
    """A new provider of the caller's organization, who signs in with this email and password."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "dr.okafor@clinic.example",
                    "name": "Dr. Ngozi Okafor",
                    "password": "long-passphrase-42",
                }
            ]
        },
    )

    email: Text = PydanticField(pattern=EMAIL_PATTERN, max_length=320)
    name: VisibleText = PydanticField(min_length=1, max_length=200)
    password: Text = PydanticField(min_length=1, max_length=256)


class ProviderPublic(BaseModel):
    """A provider of the organization."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.PROVIDER_ID,
                    "email": "dr.okafor@clinic.example",
                    "name": "Dr. Ngozi Okafor",
                    "role": "provider",
                    "organization_id": ex.ORGANIZATION_ID,
                    "active": True,
                    "created_at": ex.EARLIER,
                }
            ]
        }
    )

    id: uuid.UUID
    email: str
    name: str
    role: Role
    organization_id: uuid.UUID
    active: bool = PydanticField(description="False once an admin deactivated the account")
    created_at: datetime


class PatientCreate(BaseModel):
    """A new patient: the facts the flag rules read (birth year, opioids or benzodiazepines, other
    sedating medicines, lung disease, creatinine clearance), the time zone their local days are counted
    in, and their care team (`provider_ids`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "alex.rivera@example.org",
                    "name": "Alex Rivera",
                    "timezone": ex.TIMEZONE,
                    "birth_year": 1984,
                    "provider_ids": [ex.PROVIDER_ID],
                    "takes_opioids_or_benzodiazepines": False,
                    "takes_other_cns_depressants": False,
                    "has_lung_disease": False,
                    "creatinine_clearance_ml_min": 85,
                }
            ]
        },
    )

    email: Text = PydanticField(pattern=EMAIL_PATTERN, max_length=320)
    name: VisibleText = PydanticField(min_length=1, max_length=200)
    timezone: Text = PydanticField(min_length=1, max_length=64, description="IANA time zone")
    birth_year: StrictInt | None = PydanticField(default=None, ge=1900, le=2100)
    provider_ids: list[uuid.UUID] | None = None
    takes_opioids_or_benzodiazepines: StrictBool = False
    takes_other_cns_depressants: StrictBool = PydanticField(default=False, description=_OTHER_CNS)
    has_lung_disease: StrictBool = PydanticField(default=False, description=_LUNG_DISEASE)
    creatinine_clearance_ml_min: Number | None = PydanticField(
        default=None, ge=0, le=MAX_CREATININE_CLEARANCE_ML_MIN
    )


class PatientUpdate(BaseModel):
    """Fields a provider or admin may change. A patient may send only `timezone`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"takes_opioids_or_benzodiazepines": True}, {"timezone": "Europe/Paris"}]
        },
    )

    name: VisibleText | None = PydanticField(default=None, min_length=1, max_length=200)
    timezone: Text | None = PydanticField(default=None, min_length=1, max_length=64)
    birth_year: StrictInt | None = PydanticField(default=None, ge=1900, le=2100)
    provider_ids: list[uuid.UUID] | None = None
    takes_opioids_or_benzodiazepines: StrictBool | None = None
    takes_other_cns_depressants: StrictBool | None = PydanticField(default=None, description=_OTHER_CNS)
    has_lung_disease: StrictBool | None = PydanticField(default=None, description=_LUNG_DISEASE)
    creatinine_clearance_ml_min: Number | None = PydanticField(
        default=None, ge=0, le=MAX_CREATININE_CLEARANCE_ML_MIN
    )


class PatientPublic(BaseModel):
    """A patient's profile."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PATIENT_OUT]})

    id: uuid.UUID
    user_id: uuid.UUID = PydanticField(
        description="The patient's user account: the id POST /v1/users/{user_id}/deactivate takes"
    )
    organization_id: uuid.UUID
    email: str
    name: str
    timezone: str
    birth_year: int | None
    takes_opioids_or_benzodiazepines: bool
    takes_other_cns_depressants: bool = PydanticField(description=_OTHER_CNS)
    has_lung_disease: bool = PydanticField(description=_LUNG_DISEASE)
    creatinine_clearance_ml_min: float | None
    provider_ids: list[uuid.UUID]
    enrolled: bool = PydanticField(description="The patient has set a password and can sign in")
    active: bool = PydanticField(description="False once an admin deactivated the account")
    created_at: datetime
    updated_at: datetime


class PatientCreated(PatientPublic):
    """The new patient's profile and the one-time code they enroll with (POST /v1/auth/enroll)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PATIENT_OUT,
                    "enrolled": False,
                    "enrollment_code": "K7QM-3XPD-9RWT",
                    "enrollment_code_expires_at": "2026-04-08T14:00:00Z",
                }
            ]
        }
    )

    enrollment_code: str = PydanticField(description="Give this to the patient; it is shown only once")
    enrollment_code_expires_at: datetime


class AccountStatus(BaseModel):
    """A user account of the organization and whether it may sign in. A deactivated account's
    sessions all ended when it was deactivated; reactivating it lets it sign in again, anew."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ex.PROVIDER_ID,
                    "email": "dr.okafor@clinic.example",
                    "name": "Dr. Ngozi Okafor",
                    "role": "provider",
                    "organization_id": ex.ORGANIZATION_ID,
                    "patient_id": None,
                    "active": False,
                    "deactivated_at": "2026-04-01T14:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    email: str
    name: str
    role: Role
    organization_id: uuid.UUID
    patient_id: uuid.UUID | None = PydanticField(description="Set for a patient's account")
    active: bool
    deactivated_at: datetime | None = PydanticField(description="When it was deactivated; null while active")
