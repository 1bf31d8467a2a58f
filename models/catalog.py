"""The catalog apps build their forms from (API.md: GET /v1/catalog)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class CatalogAttribute(BaseModel):
    name: str
    min: int
    max: int
    labels: list[str]


class CatalogTerm(BaseModel):
    code: str
    wording: str
    attributes: list[CatalogAttribute]
    pro_ctcae_item: int | None
    snomed_ct: str | None
    graded: bool


class CatalogRedFlag(BaseModel):
    code: str
    question: str
    scale: Literal["yes_no", "0-3"]
    source: str
    loinc: str | None


class CatalogGad7Item(BaseModel):
    number: int
    text: str
    loinc: str


class CatalogAnswer(BaseModel):
    value: int
    label: str
    loinc: str


class CatalogGad7(BaseModel):
    stem: str
    items: list[CatalogGad7Item]
    answers: list[CatalogAnswer]
    panel_loinc: str
    total_loinc: str
    answer_list: str
    interval_days: int


class CatalogRating(BaseModel):
    question: str
    min: int
    max: int
    min_label: str
    max_label: str


class Catalog(BaseModel):
    terms: list[CatalogTerm]
    red_flags: list[CatalogRedFlag]
    gad7: CatalogGad7
    rating: CatalogRating
