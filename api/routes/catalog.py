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
    return catalog(settings)
