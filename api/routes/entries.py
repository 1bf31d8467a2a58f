"""Entries from the phone: doses, anxiety scores, side-effect reports and check-ins.

A first write answers 201; an identical retry (same id, same content) 200 with the stored entry;
the same id with other content 409.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import Query, Response

from api.deps import CallerDep, CursorParam, Limit, PatientInScope, SessionDep, SettingsDep
from api.errors import problem_responses
from api.routes.patients import patient_router
from models.common import Page
from models.entries import EntryKind
from models.entry_schemas import (
    AnxietyCreate,
    AnxietyPublic,
    CheckInAnswer,
    CheckInCreate,
    CheckInPublic,
    DoseCreate,
    DosePublic,
    SymptomCreate,
    SymptomPublic,
)
from services.entries import recording as entries
from services.entries.lists import list_entries
from services.pagination import DEFAULT_LIMIT

router = patient_router
WRITE_RESPONSES = {
    200: {"description": "An identical retry: the stored entry"},
    **problem_responses(409),
}
From = Annotated[date | None, Query(alias="from", description="First local date, inclusive")]
To = Annotated[date | None, Query(alias="to", description="Last local date, inclusive")]
WithErrors = Annotated[bool, Query(description="Include entries marked entered-in-error")]


def _status(response: Response, created: bool) -> None:
    response.status_code = 201 if created else 200


@router.post(
    "/doses",
    summary="Record a dose taken or skipped",
    status_code=201,
    response_model=DosePublic,
    responses=WRITE_RESPONSES,
    tags=["entries"],
)
async def record_dose(
    body: DoseCreate,
    response: Response,
    scoped: PatientInScope,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> DosePublic:
    created, answer = await entries.record_dose(entries.context(session, settings, caller, scoped[0]), body)
    _status(response, created)
    return answer


@router.post(
    "/anxiety",
    summary="Record a GAD-7 or a 0-10 anxiety rating",
    status_code=201,
    response_model=AnxietyPublic,
    responses=WRITE_RESPONSES,
    tags=["entries"],
)
async def record_anxiety(
    body: AnxietyCreate,
    response: Response,
    scoped: PatientInScope,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> AnxietyPublic:
    created, answer = await entries.record_anxiety(
        entries.context(session, settings, caller, scoped[0]), body
    )
    _status(response, created)
    return answer


@router.post(
    "/symptoms",
    summary="Report a side effect; the answer carries its composite grade",
    status_code=201,
    response_model=SymptomPublic,
    responses=WRITE_RESPONSES,
    tags=["entries"],
)
async def record_symptom(
    body: SymptomCreate,
    response: Response,
    scoped: PatientInScope,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> SymptomPublic:
    created, answer = await entries.record_symptom(
        entries.context(session, settings, caller, scoped[0]), body
    )
    _status(response, created)
    return answer


@router.post(
    "/check-ins",
    summary="Submit a daily check-in: all its parts are stored, or none",
    status_code=201,
    response_model=CheckInAnswer,
    responses=WRITE_RESPONSES,
    tags=["entries"],
)
async def record_check_in(
    body: CheckInCreate,
    response: Response,
    scoped: PatientInScope,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> CheckInAnswer:
    created, answer = await entries.record_check_in(
        entries.context(session, settings, caller, scoped[0]), body
    )
    _status(response, created)
    return answer


def _lister(kind: EntryKind, model: Any, summary: str) -> None:
    async def list_route(
        scoped: PatientInScope,
        session: SessionDep,
        date_from: From = None,
        date_to: To = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        include_entered_in_error: WithErrors = False,
    ) -> Page[Any]:
        return await list_entries(
            session,
            scoped[0],
            kind,
            date_from=date_from,
            date_to=date_to,
            limit=limit,
            cursor=cursor,
            include_entered_in_error=include_entered_in_error,
        )

    path = "/" + _PATHS[kind]
    router.add_api_route(
        path,
        list_route,
        methods=["GET"],
        summary=summary,
        response_model=Page[model],
        tags=["entries"],
        name=f"list_{kind.value}",
    )

    async def delete_route(
        entry_id: uuid.UUID,
        scoped: PatientInScope,
        caller: CallerDep,
        session: SessionDep,
        settings: SettingsDep,
    ) -> Response:
        await entries.mark_entered_in_error(
            entries.context(session, settings, caller, scoped[0]), kind, entry_id
        )
        return Response(status_code=204)

    router.add_api_route(
        path + "/{entry_id}",
        delete_route,
        methods=["DELETE"],
        status_code=204,
        summary=f"Mark a {kind.value.replace('_', '-')} entered-in-error (kept, left out of "
        "summaries and rules)",
        tags=["entries"],
        name=f"delete_{kind.value}",
        responses=problem_responses(404),
    )


_PATHS = {
    EntryKind.dose: "doses",
    EntryKind.anxiety: "anxiety",
    EntryKind.symptom: "symptoms",
    EntryKind.check_in: "check-ins",
}
_lister(EntryKind.dose, DosePublic, "A patient's doses, by local date range")
_lister(EntryKind.anxiety, AnxietyPublic, "A patient's anxiety scores, by local date range")
_lister(EntryKind.symptom, SymptomPublic, "A patient's side-effect reports, by local date range")
_lister(EntryKind.check_in, CheckInPublic, "A patient's check-ins, by local date range")
