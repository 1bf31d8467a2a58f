"""The signed-in user."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SignedIn
from api.errors import problem_responses
from models.accounts import Me
from services.accounts.users import describe_caller

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.get("/me", summary="Who the caller is", response_model=Me, responses=problem_responses(401))
async def me(signed_in: SignedIn) -> Me:
    """The signed-in user, with `patient_id` for a patient: the id that `me` stands for in
    /v1/patients/{patient_id} paths."""
    return describe_caller(signed_in.caller)
