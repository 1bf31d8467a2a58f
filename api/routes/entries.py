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

from api.deps import CursorParam, Limit, PatientInScope
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

RECORDED_ONCE = (
    "The `id` is the phone's: the first write answers 201; an identical retry (same id, same content) "
    "200 with the stored entry, nothing written twice; the same id with other content 409. The answer "
    "lists the flags the entry raised or escalated (CLINICAL.md rules)."
)
LISTED = (
    "Entries whose local date is within `from`..`to`, oldest first, a page at a time (pass "
    "`next_cursor` back as `cursor`); `include_entered_in_error` shows the marked ones too."
)
MARKED = (
    "Marks the entry entered-in-error: it is kept for the audit trail, shown as such, and left out "
    "of summaries and flag rules."
)


def _entry_routes(
    kind: EntryKind,
    path: str,
    body_model: type[BaseModel],
    answer_model: type[BaseModel],
    listed_model: type[BaseModel],
    *,
    record_summary: str,
    record_description: str,
    list_summary: str,
) -> None:
    recipe = kinds.RECIPES[kind]

    async def record_route(
        body: body_model,  # type: ignore[valid-type]
        response: Response,
        scoped: PatientInScope,
    ) -> Any:
        ctx = recorder.context(scoped.session, scoped.settings, scoped.caller, scoped.patient)
        created, answer = await recorder.record(ctx, recipe, body)
        response.status_code = 201 if created else 200
        return answer

    router.add_api_route(
        path,
        record_route,
        methods=["POST"],
        summary=record_summary,
        description=f"{record_description}\n\n{RECORDED_ONCE}",
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
        date_from: From = None,
        date_to: To = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        include_entered_in_error: WithErrors = False,
    ) -> Page[Any]:
        return await list_entries(
            scoped.session,
            scoped.patient,
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
        description=LISTED,
        response_model=Page[listed_model],  # type: ignore[valid-type]
        tags=["entries"],
        name=f"list_{kind.value}",
    )

    async def delete_route(
        entry_id: uuid.UUID,
        scoped: PatientInScope,
    ) -> Response:
        ctx = recorder.context(scoped.session, scoped.settings, scoped.caller, scoped.patient)
        await mark_entered_in_error(ctx, kind, entry_id)
        return Response(status_code=204)

    router.add_api_route(
        path + "/{entry_id}",
        delete_route,
        methods=["DELETE"],
        status_code=204,
        summary=f"Mark a {kind.value.replace('_', '-')} entered-in-error (kept, left out of "
        "summaries and rules)",
        description=MARKED,
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
    record_description="`dose_mg` from 0.01 to 3600 mg; `medication` defaults to the regimen in force "
    "that day.",
    list_summary="A patient's doses, by local date range",
)
_entry_routes(
    EntryKind.anxiety,
    "/anxiety",
    AnxietyCreate,
    AnxietyPublic,
    AnxietyPublic,
    record_summary="Record a GAD-7 or a 0-10 anxiety rating",
    record_description="`instrument: gad7` with `items`, 7 answers 0-3 (the answer adds `total` and "
    "`band`), or `instrument: rating` with `score` 0-10.",
    list_summary="A patient's anxiety scores, by local date range",
)
_entry_routes(
    EntryKind.symptom,
    "/symptoms",
    SymptomCreate,
    SymptomPublic,
    SymptomPublic,
    record_summary="Report a side effect; the answer carries its composite grade",
    record_description="`code` is a term of GET /v1/catalog, with the attributes that term is rated on; "
    "the answer carries its composite grade 0-3 (null for presence-only terms).",
    list_summary="A patient's side-effect reports, by local date range",
)
_entry_routes(
    EntryKind.check_in,
    "/check-ins",
    CheckInCreate,
    CheckInAnswer,
    CheckInPublic,
    record_summary="Submit a daily check-in: all its parts are stored, or none",
    record_description="`red_flags` answers the catalog's red-flag questions by `code` (yes/no, or 0-3); "
    "doses, side effects, a rating or a GAD-7 may come with it. The answer carries the flags raised and "
    "the `advice` the patient should read now (null when nothing was raised).",
    list_summary="A patient's check-ins, by local date range",
)
