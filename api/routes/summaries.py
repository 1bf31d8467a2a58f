"""What providers read: summaries, the panel, and exports (CSV, FHIR R4)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

import models.examples as ex
from api.deps import CursorParam, Limit, PatientInScope, SignedIn
from api.errors import problem_responses
from api.routes.patients import patient_router
from models.base import utcnow
from models.common import Page
from models.summaries import PanelRow, PatientSummary
from services.pagination import DEFAULT_LIMIT
from services.reports import exports, report_data, report_page, summaries
from services.reports import panel as panel_rows

router = APIRouter(prefix="/v1", tags=["summaries"])

# The exports stream their own media types; the document says which, and what they hold.
_CSV_EXAMPLE = (
    ",".join(exports.CSV_COLUMNS) + "\r\n"
    f"dose,{ex.DOSE_ID},2026-05-04,2026-05-04T12:05:00Z,,false,gabapentin,300,taken,2026-05-04T12:00:00Z"
    + "," * 13
    + "\r\n"
)
CSV_CONTENT = {
    "text/csv": {
        "schema": {
            "type": "string",
            "description": "RFC 4180 CSV, UTF-8, CRLF line ends: a header line, then one row per entry "
            "(dose, anxiety, symptom, check_in). A note that starts like a spreadsheet formula is "
            "prefixed with a quote.",
            "examples": [_CSV_EXAMPLE],
        }
    }
}
FHIR_MEDIA_TYPE = "application/fhir+json"
FHIR_CONTENT = {FHIR_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/FhirBundle"}}}
From = Annotated[
    date | None, Query(alias="from", description="First local date (default: 29 days before `to`)")
]
To = Annotated[date | None, Query(alias="to", description="Last local date, inclusive (default: today)")]


@patient_router.get(
    "/summary",
    summary="A patient's summary over a window of local days (provider, admin, the patient)",
    response_model=PatientSummary,
    response_model_by_alias=True,
    responses=problem_responses(422),
    tags=["summaries"],
)
async def summary(scoped: PatientInScope, date_from: From = None, date_to: To = None) -> PatientSummary:
    """Regimen, adherence, milligrams per local day, GAD-7 and ratings, side effects with their grades,
    open flags and check-ins over `from`..`to` (local dates; default the last 30 days)."""
    return await summaries.patient_summary(
        scoped.session, scoped.caller, scoped.patient, date_from, date_to, utcnow()
    )


ReportFrom = Annotated[
    date | None, Query(alias="from", description="First local date (default: 89 days before `to`)")
]


@patient_router.get(
    "/report",
    summary="A printable HTML report of a patient's window of local days (provider, admin, the patient)",
    response_class=HTMLResponse,
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "A self-contained HTML page: the summary's numbers and charts, no script, "
            "nothing loaded from elsewhere",
        },
        **problem_responses(422),
    },
    tags=["summaries"],
)
async def report(
    scoped: PatientInScope,
    date_from: ReportFrom = None,
    date_to: To = None,
) -> HTMLResponse:
    """The patient's window (default the last 90 local days) on one printable page: daily mg against the
    regimen, missed and late doses, GAD-7 and the 0-10 rating, a heat strip per side effect, the flags,
    and beside them the summary's numbers. Self-contained: no script, no font, no outside request (its
    Content-Security-Policy says so). A browser cannot send the bearer token: save it with curl and
    open the file. The same service as the summary feeds it, so the two never disagree."""
    patient, user = scoped.patient, scoped.user
    data = await report_data.report_data(scoped.session, scoped.caller, patient, date_from, date_to, utcnow())
    return HTMLResponse(
        report_page.render(data, user.name),
        headers={"content-security-policy": report_page.CONTENT_SECURITY_POLICY},
    )


@router.get(
    "/panel",
    summary="One row per patient of the caller, most urgent first, a page at a time (provider, admin)",
    response_model=Page[PanelRow],
    responses=problem_responses(401, 403, 422),
)
async def panel(
    signed_in: SignedIn, limit: Limit = DEFAULT_LIMIT, cursor: CursorParam = None
) -> Page[PanelRow]:
    """For triage: open flags by severity, last check-in, 7-day adherence, last GAD-7 band and worst
    grade of the last 7 days, one row per patient. Pages stay stable while flags change."""
    return await panel_rows.panel_page(signed_in.session, signed_in.caller, utcnow(), limit, cursor)


@patient_router.get(
    "/export.csv",
    summary="A patient's entries as CSV, one row per entry (provider, admin, the patient)",
    response_class=StreamingResponse,
    responses={200: {"content": CSV_CONTENT, "description": "CSV, streamed"}, **problem_responses(422)},
    tags=["summaries"],
)
async def export_csv(
    request: Request,
    scoped: PatientInScope,
    date_from: From = None,
    date_to: To = None,
) -> StreamingResponse:
    """Every entry over `from`..`to` (local dates), one row each, streamed as `text/csv` with a
    header line. Entries marked entered-in-error are included and say so. A patient downloads their own
    (right of access, HIPAA 164.524); the access is audited like any other."""
    patient = scoped.patient
    start, end = summaries.window(patient, date_from, date_to, utcnow(), summaries.MAX_EXPORT_DAYS)
    body = exports.csv_export(request.app.state.session_factory, patient.id, start, end)
    filename = f"symptrack-{patient.id}-{start.isoformat()}-{end.isoformat()}.csv"
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@patient_router.get(
    "/fhir",
    summary="A patient's record as a FHIR R4 Bundle of type collection (provider, admin, the patient)",
    response_class=StreamingResponse,
    responses={
        200: {"content": FHIR_CONTENT, "description": "FHIR R4 Bundle, streamed"},
        **problem_responses(422),
    },
    tags=["summaries"],
)
async def export_fhir(
    request: Request,
    scoped: PatientInScope,
    date_from: From = None,
    date_to: To = None,
) -> StreamingResponse:
    """A FHIR R4 Bundle of type collection, streamed as `application/fhir+json`: the Patient, a
    MedicationRequest per regimen, a MedicationAdministration per dose, an Observation per GAD-7,
    rating and side-effect report, a Flag per open flag. A patient downloads their own (right of access);
    the access is audited like any other."""
    patient, user = scoped.patient, scoped.user
    start, end = summaries.window(patient, date_from, date_to, utcnow(), summaries.MAX_EXPORT_DAYS)
    body = exports.fhir_export(request.app.state.session_factory, patient, user, start, end)
    return StreamingResponse(body, media_type=FHIR_MEDIA_TYPE)
