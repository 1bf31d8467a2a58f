"""What providers read: summaries, the panel, and exports (CSV, FHIR R4)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.deps import CallerDep, CursorParam, Limit, PatientInScope, SessionDep
from api.errors import problem_responses
from api.routes.patients import patient_router
from models.accounts import Role
from models.base import utcnow
from models.common import Page
from models.summaries import PanelRow, PatientSummary
from services.accounts.access import require_role
from services.pagination import DEFAULT_LIMIT
from services.reports import exports, report_data, report_page, summaries
from services.reports import panel as panel_rows

router = APIRouter(prefix="/v1", tags=["summaries"])
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
async def summary(
    scoped: PatientInScope, caller: CallerDep, session: SessionDep, date_from: From = None, date_to: To = None
) -> PatientSummary:
    return await summaries.patient_summary(session, caller, scoped[0], date_from, date_to, utcnow())


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
    caller: CallerDep,
    session: SessionDep,
    date_from: ReportFrom = None,
    date_to: To = None,
) -> HTMLResponse:
    patient, user = scoped
    data = await report_data.report_data(session, caller, patient, date_from, date_to, utcnow())
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
    caller: CallerDep, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: CursorParam = None
) -> Page[PanelRow]:
    return await panel_rows.panel_page(session, caller, utcnow(), limit, cursor)


@patient_router.get(
    "/export.csv",
    summary="A patient's entries as CSV, one row per entry (provider, admin)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV, streamed"}, **problem_responses(403)},
    tags=["summaries"],
)
async def export_csv(
    request: Request,
    scoped: PatientInScope,
    caller: CallerDep,
    session: SessionDep,
    date_from: From = None,
    date_to: To = None,
) -> StreamingResponse:
    require_role(caller, Role.provider, Role.admin)
    patient = scoped[0]
    start, end = summaries.window(patient, date_from, date_to, utcnow())
    body = exports.csv_export(request.app.state.session_factory, patient.id, start, end)
    filename = f"symptrack-{patient.id}-{start.isoformat()}-{end.isoformat()}.csv"
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@patient_router.get(
    "/fhir",
    summary="A patient's record as a FHIR R4 Bundle of type collection (provider, admin)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/fhir+json": {}}, "description": "FHIR R4 Bundle, streamed"},
        **problem_responses(403),
    },
    tags=["summaries"],
)
async def export_fhir(
    request: Request,
    scoped: PatientInScope,
    caller: CallerDep,
    session: SessionDep,
    date_from: From = None,
    date_to: To = None,
) -> StreamingResponse:
    require_role(caller, Role.provider, Role.admin)
    patient, user = scoped
    start, end = summaries.window(patient, date_from, date_to, utcnow())
    body = exports.fhir_export(request.app.state.session_factory, patient, user, start, end)
    return StreamingResponse(body, media_type="application/fhir+json")
