"""Entries from the phone: doses, anxiety scores, side-effect reports and check-ins.

A first write answers 201; an identical retry (same id, same content) 200 with the stored entry;
the same id with other content 409. One factory makes the four kinds' routes alike.
"""

# No `from __future__ import annotations`: the route factory's body types must be real objects.

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import BaseModel

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
from services.entries import kinds, recorder
from services.entries.entered_in_error import mark_entered_in_error
from services.entries.lists import list_entries
from services.pagination import DEFAULT_LIMIT

router = patient_router
From = Annotated[date | None, Query(alias="from", description="First local date, inclusive")]
To = Annotated[date | None, Query(alias="to", description="Last local date, inclusive")]
WithErrors = Annotated[bool, Query(description="Include entries marked entered-in-error")]


def _entry_routes(
    kind: EntryKind,
    path: str,
    body_model: type[BaseModel],
    answer_model: type[BaseModel],
    listed_model: type[BaseModel],
    *,
    record_summary: str,
    list_summary: str,
) -> None:
    recipe = kinds.RECIPES[kind]

    async def record_route(
        body: body_model,  # type: ignore[valid-type]
        response: Response,
        scoped: PatientInScope,
        caller: CallerDep,
        session: SessionDep,
        settings: SettingsDep,
    ) -> Any:
        ctx = recorder.context(session, settings, caller, scoped[0])
        created, answer = await recorder.record(ctx, recipe, body)
        response.status_code = 201 if created else 200
        return answer

    router.add_api_route(
        path,
        record_route,
        methods=["POST"],
        summary=record_summary,
        status_code=201,
        response_model=answer_model,
        # A retry's 200 is the same model as the first write's 201, so a client parses both.
        responses={
            200: {"model": answer_model, "description": "An identical retry: the stored entry"},
            **problem_responses(409),
        },
        tags=["entries"],
        name=f"record_{kind.value}",
    )

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

    router.add_api_route(
        path,
        list_route,
        methods=["GET"],
        summary=list_summary,
        response_model=Page[listed_model],  # type: ignore[valid-type]
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
        ctx = recorder.context(session, settings, caller, scoped[0])
        await mark_entered_in_error(ctx, kind, entry_id)
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


_entry_routes(
    EntryKind.dose,
    "/doses",
    DoseCreate,
    DosePublic,
    DosePublic,
    record_summary="Record a dose taken or skipped",
    list_summary="A patient's doses, by local date range",
)
_entry_routes(
    EntryKind.anxiety,
    "/anxiety",
    AnxietyCreate,
    AnxietyPublic,
    AnxietyPublic,
    record_summary="Record a GAD-7 or a 0-10 anxiety rating",
    list_summary="A patient's anxiety scores, by local date range",
)
_entry_routes(
    EntryKind.symptom,
    "/symptoms",
    SymptomCreate,
    SymptomPublic,
    SymptomPublic,
    record_summary="Report a side effect; the answer carries its composite grade",
    list_summary="A patient's side-effect reports, by local date range",
)
_entry_routes(
    EntryKind.check_in,
    "/check-ins",
    CheckInCreate,
    CheckInAnswer,
    CheckInPublic,
    record_summary="Submit a daily check-in: all its parts are stored, or none",
    list_summary="A patient's check-ins, by local date range",
)
