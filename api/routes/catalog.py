"""The catalog apps build their forms from (no sign-in needed)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep
from models.catalog import Catalog
from services.entries.catalog_view import catalog

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get(
    "/catalog",
    summary="Side-effect terms, their attributes and codes, and the red-flag questions",
    response_model=Catalog,
)
async def get_catalog(settings: SettingsDep) -> Catalog:
    """No sign-in needed. Everything apps build their forms from: the side-effect terms, the attributes
    each is rated on with their ranges and labels, the red-flag questions of the daily check-in (their
    `code` is the key in a check-in's `red_flags`), the GAD-7 and the 0-10 rating."""
    return catalog(settings)
