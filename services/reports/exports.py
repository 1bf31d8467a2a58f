"""Exports of a patient's entries over a window: CSV (one row per entry) and a FHIR R4 Bundle.

Both stream: rows are read a page at a time from their own session and written out as they come, so
memory stays flat however long the window. Every FHIR resource is validated with fhir.resources (R4B
models) before it is written.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.flag import Flag as FhirFlag
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.accounts import Patient, User
from models.base import utcnow
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import Flag, FlagStatus
from models.regimens import GABAPENTIN_RXNORM, Regimen
from services.clinical.catalog import (
    GAD7_ANSWER_LABELS,
    GAD7_ANSWER_LOINC,
    GAD7_ITEMS,
    GAD7_TOTAL_LOINC,
    TERMS,
)
from services.localtime import utc

PAGE = 200  # rows per query: a long window is read a bounded page at a time
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
# Our own code systems, for what no standard code names (CLINICAL.md: "the product's own code system").
OWN = "urn:symptrack:codesystem"
SIDE_EFFECTS = f"{OWN}:side-effect"
ATTRIBUTES = f"{OWN}:side-effect-attribute"
OBSERVATIONS = f"{OWN}:observation"
RULES = f"{OWN}:flag-rule"
PATIENT_FACTS = "urn:symptrack:extension:patient"
# CLINICAL.md 3: the yes/no facts behind respiratory risk (with age 65 or over, from the birth year).
PATIENT_RISK_FACTS = ("takes_opioids_or_benzodiazepines", "takes_other_cns_depressants", "has_lung_disease")
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

CSV_COLUMNS = [
    "entry_type", "id", "local_date", "occurred_at", "check_in_id", "entered_in_error",
    "medication", "dose_mg", "status", "scheduled_for",
    "instrument", "gad7_items", "gad7_total", "gad7_band", "rating",
    "symptom_code", "frequency", "severity", "interference", "present", "grade",
    "red_flags", "note",
]  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Rows = AsyncIterator[Any]


async def _pages(
    factory: async_sessionmaker[AsyncSession],
    model: Any,
    patient_id: uuid.UUID,
    start: date,
    end: date,
    instant: str,
) -> Rows:
    """The patient's entries of one kind in the window, in time order, a page per query (keyset)."""
    time_column = getattr(model, instant)
    last: tuple[datetime, uuid.UUID] | None = None
    while True:
        statement = (
            select(model)
            .where(col(model.patient_id) == patient_id, col(model.local_date).between(start, end))
            .order_by(time_column, col(model.id))
            .limit(PAGE)
        )
        if last is not None:
            statement = statement.where(
                or_(time_column > last[0], and_(time_column == last[0], col(model.id) > last[1]))
            )
        async with factory() as session:
            rows = list((await session.execute(statement)).scalars())
        for row in rows:
            yield row
            # Turning a row into text is CPU (a FHIR resource's validation ~0.2 ms): other requests'
            # steps run between rows, not after a page (measured: every 10 rows left another
            # patient's summary p95 8x its quiet value while exports looped, every row 1.6x).
            await asyncio.sleep(0)
        if len(rows) < PAGE:
            return
        last = (getattr(rows[-1], instant), rows[-1].id)


def _safe(text: str | None) -> str:
    """Spreadsheets run a cell that starts like a formula (OWASP CSV injection: =, +, -, @, tab,
    carriage return); a leading quote keeps it as text. The one neutralization of every text cell."""
    if text and text.startswith(_FORMULA_START):
        return "'" + text
    return text or ""


def _cells(row: dict[str, Any]) -> dict[str, Any]:
    """Every text cell of a row neutralized the one way, whatever its column: a column added later
    can't forget it. Numbers stay numbers."""
    return {name: _safe(value) if isinstance(value, str) else value for name, value in row.items()}


def _iso(value: datetime | None) -> str:
    return utc(value).isoformat().replace("+00:00", "Z") if value else ""


def _csv_row(kind: str, row: Any) -> dict[str, Any]:
    base = {
        "entry_type": kind,
        "id": row.id,
        "local_date": row.local_date.isoformat(),
        "check_in_id": getattr(row, "check_in_id", "") or "",
        "entered_in_error": "true" if row.entered_in_error_at else "false",
        "note": getattr(row, "note", None) or "",
    }
    if isinstance(row, Dose):
        base |= {
            "occurred_at": _iso(row.taken_at),
            "medication": row.medication,
            "dose_mg": f"{row.dose_mg:g}",
            "status": row.status,
            "scheduled_for": _iso(row.scheduled_for),
        }
    elif isinstance(row, AnxietyScore):
        base |= {
            "occurred_at": _iso(row.recorded_at),
            "instrument": row.instrument,
            "gad7_items": " ".join(map(str, row.items or [])),
            "gad7_total": row.total if row.total is not None else "",
            "gad7_band": row.band or "",
            "rating": row.score if row.score is not None else "",
        }
    elif isinstance(row, SymptomReport):
        base |= {"occurred_at": _iso(row.reported_at), "symptom_code": row.code}
        for name in ("frequency", "severity", "interference", "present", "grade"):
            value = getattr(row, name)
            base[name] = "" if value is None else value
    elif isinstance(row, CheckIn):
        base |= {
            "occurred_at": _iso(row.submitted_at),
            "red_flags": json.dumps(row.red_flags, sort_keys=True, separators=(",", ":")),
        }
    return base


async def csv_export(
    factory: async_sessionmaker[AsyncSession], patient_id: uuid.UUID, start: date, end: date
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="", lineterminator="\r\n")

    def flush() -> bytes:
        data = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writeheader()
    yield flush()
    for kind, model, instant in (
        ("check_in", CheckIn, "submitted_at"),
        ("dose", Dose, "taken_at"),
        ("anxiety", AnxietyScore, "recorded_at"),
        ("symptom", SymptomReport, "reported_at"),
    ):
        count = 0
        async for row in _pages(factory, model, patient_id, start, end, instant):
            writer.writerow(_cells(_csv_row(kind, row)))
            count += 1
            if count % 200 == 0:
                yield flush()
        yield flush()


# ---- FHIR ------------------------------------------------------------------------------------------


def _ref(resource_type: str, resource_id: uuid.UUID) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}", "type": resource_type}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {
        "coding": [{"system": system, "code": code, **({"display": display} if display else {})}],
        **({"text": display} if display else {}),
    }


def _medication(name: str, rxnorm: str | None) -> dict[str, Any]:
    if rxnorm:
        return {"coding": [{"system": RXNORM, "code": rxnorm, "display": name}], "text": name}
    return {"text": name}


def rxnorm_of(medication: str, rxnorm: str | None) -> str | None:
    """A regimen's own code, except the gabapentin code that regimens of other medications were
    once stored with by default (before issue 25): that one is false, so no code at all."""
    if rxnorm == GABAPENTIN_RXNORM and medication.strip().lower() != "gabapentin":
        return None
    return rxnorm


def fhir_patient(patient: Patient, user: User) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": [{"system": f"{OWN}:patient-id", "value": str(patient.id)}],
        "name": [{"text": user.name}],
    }
    if patient.birth_year:
        resource["birthDate"] = str(patient.birth_year)
    # The facts the flag rules read (CLINICAL.md 3): yes/no as the care team recorded them (false
    # when never set), each an extension of our own, since no standard Patient element carries them.
    resource["extension"] = [
        {"url": f"{PATIENT_FACTS}:{name.replace('_', '-')}", "valueBoolean": getattr(patient, name)}
        for name in PATIENT_RISK_FACTS
    ]
    return resource


def fhir_medication_request(regimen: Regimen, today: date) -> dict[str, Any]:
    active = regimen.end_date is None or regimen.end_date >= today
    period: dict[str, str] = {"start": regimen.start_date.isoformat()}
    if regimen.end_date:
        period["end"] = regimen.end_date.isoformat()
    return {
        "resourceType": "MedicationRequest",
        "id": str(regimen.id),
        "status": "active" if active else "completed",
        "intent": "order",
        "medicationCodeableConcept": _medication(
            regimen.medication, rxnorm_of(regimen.medication, regimen.rxnorm)
        ),
        "subject": _ref("Patient", regimen.patient_id),
        "authoredOn": _iso(regimen.created_at),
        **({"reasonCode": [{"text": regimen.indication}]} if regimen.indication else {}),
        "dosageInstruction": [
            {
                "sequence": index + 1,
                "text": f"{slot['dose_mg']:g} mg at {slot['time']}",
                "timing": {
                    "repeat": {
                        "frequency": 1,
                        "period": 1,
                        "periodUnit": "d",
                        "timeOfDay": [f"{slot['time']}:00"],
                    }
                },
                "doseAndRate": [
                    {"doseQuantity": {"value": slot["dose_mg"], "unit": "mg", "system": UCUM, "code": "mg"}}
                ],
            }
            for index, slot in enumerate(regimen.schedule)
        ],
        "dispenseRequest": {"validityPeriod": period},
        **(
            {"note": [{"text": f"Maximum {regimen.max_daily_mg:g} mg per day"}]}
            if regimen.max_daily_mg
            else {}
        ),
    }


def fhir_administration(dose: Dose, rxnorm: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": str(dose.id),
        "status": "entered-in-error"
        if dose.entered_in_error_at
        else ("completed" if dose.status == "taken" else "not-done"),
        "medicationCodeableConcept": _medication(dose.medication, rxnorm),
        "subject": _ref("Patient", dose.patient_id),
        "effectiveDateTime": _iso(dose.taken_at),
        "dosage": {"dose": {"value": dose.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}},
    }
    return resource


def _observation(row: Any, code: dict[str, Any], effective: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": str(row.id),
        "status": "entered-in-error" if row.entered_in_error_at else "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": code,
        "subject": _ref("Patient", row.patient_id),
        "effectiveDateTime": _iso(effective),
        **fields,
    }


def fhir_anxiety(score: AnxietyScore) -> dict[str, Any]:
    if score.instrument == "gad7":
        components = [
            {
                "code": _coding(LOINC, loinc, text),
                "valueCodeableConcept": _coding(LOINC, GAD7_ANSWER_LOINC[value], GAD7_ANSWER_LABELS[value]),
            }
            for (text, loinc), value in zip(GAD7_ITEMS, score.items or [], strict=False)
        ]
        return _observation(
            score,
            _coding(LOINC, GAD7_TOTAL_LOINC, "Generalized anxiety disorder 7 item (GAD-7) total score"),
            score.recorded_at,
            valueInteger=score.total,
            interpretation=[{"text": score.band}] if score.band else None,
            component=components,
        )
    return _observation(
        score,
        _coding(OBSERVATIONS, "anxiety-rating", "How anxious did you feel today? (0-10)"),
        score.recorded_at,
        valueInteger=score.score,
    )


def fhir_symptom(report: SymptomReport) -> dict[str, Any]:
    term = TERMS[report.code]
    code = (
        {
            "coding": [
                {"system": SNOMED, "code": term.snomed_ct, "display": term.wording},
                {"system": SIDE_EFFECTS, "code": term.code},
            ],
            "text": term.wording,
        }
        if term.snomed_ct
        else _coding(SIDE_EFFECTS, term.code, term.wording)
    )
    components = [
        {"code": _coding(ATTRIBUTES, name), "valueInteger": getattr(report, name)}
        for name in ("frequency", "severity", "interference", "present")
        if getattr(report, name) is not None
    ]
    value = (
        {"valueInteger": report.grade} if report.grade is not None else {"valueBoolean": report.present == 1}
    )
    return _observation(report, code, report.reported_at, component=components, **value)


def fhir_flag(flag: Flag) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "id": str(flag.id),
        "status": "active",
        "category": [_coding("http://terminology.hl7.org/CodeSystem/flag-category", "clinical", "Clinical")],
        "code": {"coding": [{"system": RULES, "code": flag.rule}], "text": flag.reason},
        "subject": _ref("Patient", flag.patient_id),
        "period": {"start": _iso(flag.observed_at)},
    }


_MODELS: dict[str, Any] = {
    "Patient": FhirPatient,
    "MedicationRequest": MedicationRequest,
    "MedicationAdministration": MedicationAdministration,
    "Observation": Observation,
    "Flag": FhirFlag,
}


def validated(resource: dict[str, Any]) -> str:
    """The resource as JSON, after fhir.resources has accepted it (None fields dropped)."""
    clean = {k: v for k, v in resource.items() if v is not None}
    model = _MODELS[clean["resourceType"]].model_validate(clean)
    return str(model.model_dump_json(exclude_none=True))


async def fhir_export(
    factory: async_sessionmaker[AsyncSession], patient: Patient, user: User, start: date, end: date
) -> AsyncIterator[bytes]:
    """A Bundle of type collection, written one validated entry at a time."""
    now = utcnow()
    head = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection", "timestamp": _iso(now)}
    yield (json.dumps(head)[:-1] + ', "entry": [').encode()
    first = True

    def entry(resource: dict[str, Any]) -> bytes:
        nonlocal first
        separator = "" if first else ","
        text = f'{separator}{{"fullUrl": "urn:uuid:{resource["id"]}", "resource": {validated(resource)}}}'
        first = False
        return text.encode()

    yield entry(fhir_patient(patient, user))
    async with factory() as session:
        regimens = list(
            (
                await session.execute(
                    select(Regimen)
                    .where(
                        col(Regimen.patient_id) == patient.id,
                        col(Regimen.start_date) <= end,
                        or_(col(Regimen.end_date).is_(None), col(Regimen.end_date) >= start),
                    )
                    .order_by(col(Regimen.start_date))
                )
            ).scalars()
        )
        open_flags = list(
            (
                await session.execute(
                    select(Flag)
                    .where(col(Flag.patient_id) == patient.id, col(Flag.status) == FlagStatus.open.value)
                    .order_by(col(Flag.created_at))
                )
            ).scalars()
        )
    today = end
    # A dose is coded as its medication's regimen is (the latest one in the window); a dose of a
    # medication no regimen names is text only: no code is better than a false one.
    rxnorm = {r.medication: rxnorm_of(r.medication, r.rxnorm) for r in regimens}
    for regimen in regimens:
        yield entry(fhir_medication_request(regimen, today))
    builders: list[tuple[Any, str, Callable[[Any], dict[str, Any]]]] = [
        (
            Dose,
            "taken_at",
            lambda d: fhir_administration(d, rxnorm.get(d.medication)),
        ),
        (AnxietyScore, "recorded_at", fhir_anxiety),
        (SymptomReport, "reported_at", fhir_symptom),
    ]
    for model, instant, build in builders:
        async for row in _pages(factory, model, patient.id, start, end, instant):
            yield entry(build(row))
    for flag in open_flags:
        yield entry(fhir_flag(flag))
    yield b"]}"
