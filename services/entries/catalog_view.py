"""The clinical catalog as apps receive it."""

from __future__ import annotations

from models.catalog import (
    Catalog,
    CatalogAnswer,
    CatalogAttribute,
    CatalogGad7,
    CatalogGad7Item,
    CatalogRating,
    CatalogRedFlag,
    CatalogTerm,
)
from services.clinical.catalog import (
    ATTRIBUTE_RANGES,
    GAD7_ANSWER_LABELS,
    GAD7_ANSWER_LIST,
    GAD7_ANSWER_LOINC,
    GAD7_ITEMS,
    GAD7_PANEL_LOINC,
    GAD7_STEM,
    GAD7_TOTAL_LOINC,
    RED_FLAGS,
    TERMS,
    Attribute,
)
from services.settings import Settings

# CLINICAL.md 2: the PRO-CTCAE answer wording of each attribute, in score order.
ATTRIBUTE_LABELS: dict[Attribute, list[str]] = {
    Attribute.frequency: ["never", "rarely", "occasionally", "frequently", "almost constantly"],
    Attribute.severity: ["none", "mild", "moderate", "severe", "very severe"],
    Attribute.interference: ["not at all", "a little bit", "somewhat", "quite a bit", "very much"],
    Attribute.present: ["no", "yes"],
}


def catalog(settings: Settings) -> Catalog:
    return Catalog(
        terms=[
            CatalogTerm(
                code=term.code,
                wording=term.wording,
                attributes=[
                    CatalogAttribute(
                        name=attribute.value,
                        min=ATTRIBUTE_RANGES[attribute][0],
                        max=ATTRIBUTE_RANGES[attribute][1],
                        labels=ATTRIBUTE_LABELS[attribute],
                    )
                    for attribute in term.attributes
                ],
                pro_ctcae_item=term.pro_ctcae_item,
                snomed_ct=term.snomed_ct,
                graded=term.attributes != (Attribute.present,),
            )
            for term in TERMS.values()
        ],
        red_flags=[
            CatalogRedFlag(code=q.code, question=q.question, scale=q.scale, source=q.source, loinc=q.loinc)
            for q in RED_FLAGS.values()
        ],
        gad7=CatalogGad7(
            stem=GAD7_STEM,
            items=[
                CatalogGad7Item(number=i + 1, text=text, loinc=loinc)
                for i, (text, loinc) in enumerate(GAD7_ITEMS)
            ],
            answers=[
                CatalogAnswer(value=value, label=label, loinc=loinc)
                for value, (label, loinc) in enumerate(
                    zip(GAD7_ANSWER_LABELS, GAD7_ANSWER_LOINC, strict=True)
                )
            ],
            panel_loinc=GAD7_PANEL_LOINC,
            total_loinc=GAD7_TOTAL_LOINC,
            answer_list=GAD7_ANSWER_LIST,
            interval_days=settings.gad7_interval_days,
        ),
        rating=CatalogRating(
            question="How anxious did you feel today?",
            min=0,
            max=10,
            min_label="not at all",
            max_label="worst imaginable",
        ),
    )
