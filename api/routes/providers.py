"""Providers of the caller's organization."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SignedIn
from api.errors import problem_responses
from models.accounts import ProviderCreate, ProviderPublic
from services.accounts import patients

router = APIRouter(prefix="/v1/providers", tags=["accounts"])


@router.post(
    "",
    summary="Add a provider to the organization (admin)",
    status_code=201,
    response_model=ProviderPublic,
    responses=problem_responses(401, 403, 409),
)
async def create_provider(body: ProviderCreate, signed_in: SignedIn) -> ProviderPublic:
    """An admin adds a provider to their own organization. An email already in use answers 409."""
    return await patients.create_provider(signed_in.session, signed_in.caller, body)


@router.get(
    "",
    summary="The organization's providers (admin, provider)",
    response_model=list[ProviderPublic],
    responses=problem_responses(401, 403),
)
async def list_providers(signed_in: SignedIn) -> list[ProviderPublic]:
    """The providers of the caller's organization."""
    return await patients.list_providers(signed_in.session, signed_in.caller)
