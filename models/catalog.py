"""The catalog apps build their forms from (API.md: GET /v1/catalog)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.config import JsonDict

_ATTRIBUTE: JsonDict = {
    "name": "severity",
    "min": 0,
    "max": 4,
    "labels": ["none", "mild", "moderate", "severe", "very severe"],
}
_TERM: JsonDict = {
    "code": "dizziness",
    "wording": "Dizziness",
    "attributes": [_ATTRIBUTE],
    "pro_ctcae_item": 40,
    "snomed_ct": "404640003",
    "graded": True,
}
_RED_FLAG: JsonDict = {
    "code": "self_harm_thoughts",
    "question": "Thoughts that you would be better off dead, or of hurting yourself?",
    "scale": "0-3",
    "source": "label 5.5 suicidal behavior and ideation",
    "loinc": "44260-8",
}
_GAD7_ITEM: JsonDict = {"number": 1, "text": "Feeling nervous, anxious, or on edge", "loinc": "69725-0"}
_ANSWER: JsonDict = {"value": 0, "label": "Not at all", "loinc": "LA6568-5"}
_GAD7: JsonDict = {
    "stem": "Over the last 2 weeks, how often have you been bothered by the following problems?",
    "items": [_GAD7_ITEM],
    "answers": [_ANSWER],
    "panel_loinc": "69737-5",
    "total_loinc": "70274-6",
    "answer_list": "LL358-3",
    "interval_days": 14,
}
_RATING: JsonDict = {
    "question": "How anxious did you feel today?",
    "min": 0,
    "max": 10,
    "min_label": "not at all",
    "max_label": "worst imaginable",
}


class CatalogAttribute(BaseModel):
    """An attribute a side effect is rated on (frequency, severity, interference 0-4; present 0-1)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ATTRIBUTE]})

    name: str
    min: int
    max: int
    labels: list[str]


class CatalogTerm(BaseModel):
    """A side effect the patient can report, its attributes in the order to ask them, and its codes."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TERM]})

    code: str
    wording: str
    attributes: list[CatalogAttribute]
    pro_ctcae_item: int | None
    snomed_ct: str | None
    graded: bool


class CatalogRedFlag(BaseModel):
    """A safety question of the daily check-in; `code` is its key in the check-in's `red_flags`."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RED_FLAG]})

    code: str
    question: str
    scale: Literal["yes_no", "0-3"]
    source: str
    loinc: str | None


class CatalogGad7Item(BaseModel):
    """One GAD-7 question."""

    model_config = ConfigDict(json_schema_extra={"examples": [_GAD7_ITEM]})

    number: int
    text: str
    loinc: str


class CatalogAnswer(BaseModel):
    """One answer of the GAD-7 scale, 0-3."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ANSWER]})

    value: int
    label: str
    loinc: str


class CatalogGad7(BaseModel):
    """The GAD-7 questionnaire: its questions, answers, LOINC codes and how often it is asked."""

    model_config = ConfigDict(json_schema_extra={"examples": [_GAD7]})

    stem: str
    items: list[CatalogGad7Item]
    answers: list[CatalogAnswer]
    panel_loinc: str
    total_loinc: str
    answer_list: str
    interval_days: int


class CatalogRating(BaseModel):
    """The 0-10 anxiety rating question."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RATING]})

    question: str
    min: int
    max: int
    min_label: str
    max_label: str


class Catalog(BaseModel):
    """What apps build their forms from (shown here with one item of each list)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"terms": [_TERM], "red_flags": [_RED_FLAG], "gad7": _GAD7, "rating": _RATING}]
        }
    )

    terms: list[CatalogTerm]
    red_flags: list[CatalogRedFlag]
    gad7: CatalogGad7
    rating: CatalogRating
