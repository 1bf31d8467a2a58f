"""The clinical catalog matches CLINICAL.md 1 (GAD-7), 2 (side-effect terms) and 3 (red-flag questions).

The expected rows below are a second transcription of CLINICAL.md, independent of
services/clinical/catalog.py, so a typo in either copy fails a test.
"""

from __future__ import annotations

import dataclasses

import pytest

from services.clinical.catalog import (
    ATTRIBUTE_RANGES,
    GAD7_ANSWER_LABELS,
    GAD7_ANSWER_LIST,
    GAD7_ANSWER_LOINC,
    GAD7_ANSWER_MORE_THAN_HALF,
    GAD7_ANSWER_NEARLY_EVERY_DAY,
    GAD7_ANSWER_NOT_AT_ALL,
    GAD7_ANSWER_SEVERAL_DAYS,
    GAD7_ITEMS,
    GAD7_PANEL_LOINC,
    GAD7_STEM,
    GAD7_TOTAL_LOINC,
    RED_FLAGS,
    TERMS,
    Attribute,
)

# CLINICAL.md 2: code, patient wording, attributes, PRO-CTCAE item, SNOMED CT.
EXPECTED_TERMS: list[tuple[str, str, tuple[str, ...], int | None, str | None]] = [
    ("dizziness", "Dizziness", ("severity", "interference"), 40, "404640003"),
    ("drowsiness", "Drowsiness or sleepiness", ("severity", "interference"), None, "271782001"),
    ("coordination", "Problems with balance or coordination", ("severity", "interference"), None, "20262006"),
    ("limb_swelling", "Swelling of arms or legs", ("frequency", "severity", "interference"), 22, "271809000"),
    ("nausea", "Nausea", ("frequency", "severity"), 9, "422587007"),
    ("vomiting", "Vomiting", ("frequency", "severity"), 10, "422400008"),
    ("blurred_vision", "Blurry vision", ("severity", "interference"), 41, "246636008"),
    ("memory", "Problems with memory", ("severity", "interference"), 47, "386807006"),
    ("concentration", "Problems with concentration", ("severity", "interference"), 46, "26329005"),
    ("fatigue", "Fatigue, tiredness or lack of energy", ("severity", "interference"), 53, "84229001"),
    ("sad_mood", "Sad or unhappy feelings", ("frequency", "severity", "interference"), 56, None),
    ("shortness_of_breath", "Shortness of breath", ("severity", "interference"), 19, "267036007"),
    ("rash", "Rash", ("present",), 24, "271807003"),
    ("hives", "Hives (itchy red bumps on the skin)", ("present",), 29, "126485001"),
    ("dry_mouth", "Dry mouth", ("severity",), 1, "87715008"),
    ("constipation", "Constipation", ("severity",), 15, "14760008"),
    ("diarrhea", "Loose or watery stools", ("frequency",), 16, "62315008"),
]

# CLINICAL.md 3: code, question, scale, source, LOINC.
EXPECTED_RED_FLAGS: list[tuple[str, str, str, str, str | None]] = [
    (
        "face_swelling",
        "Swelling of your face, lips, tongue or throat?",
        "yes_no",
        "label 5.2 anaphylaxis and angioedema",
        None,
    ),
    (
        "breathing_trouble",
        "Trouble breathing or swallowing?",
        "yes_no",
        "label 5.2 (anaphylaxis, angioedema)",
        None,
    ),
    (
        "slow_breathing",
        "Slow or shallow breathing?",
        "yes_no",
        "FDA safety communication 2019-12-19 (respiratory depression)",
        None,
    ),
    (
        "hard_to_wake",
        "So sleepy that you are hard to wake, confused, or bluish lips or fingers?",
        "yes_no",
        "FDA safety communication 2019-12-19",
        None,
    ),
    (
        "self_harm_thoughts",
        "Thoughts that you would be better off dead, or of hurting yourself?",
        "0-3",
        "label 5.5 suicidal behavior and ideation",
        "44260-8",
    ),
    ("fever", "Fever?", "yes_no", "label 5.1 DRESS", None),
    ("swollen_glands", "Swollen glands in your neck, armpits or groin?", "yes_no", "label 5.1 DRESS", None),
    ("seizure", "A seizure?", "yes_no", "label 5.6 seizures on abrupt discontinuation", None),
    ("fall", "A fall or injury?", "yes_no", "label 5.3-5.4 (dizziness, somnolence, driving)", None),
]


def test_there_are_17_terms_with_the_codes_of_clinical_md_in_table_order() -> None:
    assert len(TERMS) == 17
    assert list(TERMS) == [row[0] for row in EXPECTED_TERMS]
    assert all(code == term.code for code, term in TERMS.items())


@pytest.mark.parametrize(("code", "wording", "attributes", "item", "snomed"), EXPECTED_TERMS)
def test_each_term_matches_its_clinical_md_row(
    code: str, wording: str, attributes: tuple[str, ...], item: int | None, snomed: str | None
) -> None:
    term = TERMS[code]
    assert term.wording == wording
    assert term.attributes == tuple(Attribute(name) for name in attributes)
    assert term.pro_ctcae_item == item
    assert term.snomed_ct == snomed


def test_snomed_codes_are_exactly_those_of_the_table() -> None:
    assert {code: term.snomed_ct for code, term in TERMS.items()} == {
        "dizziness": "404640003",
        "drowsiness": "271782001",
        "coordination": "20262006",
        "limb_swelling": "271809000",
        "nausea": "422587007",
        "vomiting": "422400008",
        "blurred_vision": "246636008",
        "memory": "386807006",
        "concentration": "26329005",
        "fatigue": "84229001",
        "sad_mood": None,
        "shortness_of_breath": "267036007",
        "rash": "271807003",
        "hives": "126485001",
        "dry_mouth": "87715008",
        "constipation": "14760008",
        "diarrhea": "62315008",
    }


def test_sad_mood_has_no_snomed_code_and_is_the_only_one() -> None:
    assert TERMS["sad_mood"].snomed_ct is None
    assert [code for code, term in TERMS.items() if term.snomed_ct is None] == ["sad_mood"]


def test_drowsiness_and_coordination_have_no_pro_ctcae_item() -> None:
    assert [code for code, term in TERMS.items() if term.pro_ctcae_item is None] == [
        "drowsiness",
        "coordination",
    ]


def test_attribute_values_and_ranges() -> None:
    assert [a.value for a in Attribute] == ["frequency", "severity", "interference", "present"]
    ranges = ATTRIBUTE_RANGES
    assert ranges == {
        Attribute.frequency: (0, 4),
        Attribute.severity: (0, 4),
        Attribute.interference: (0, 4),
        Attribute.present: (0, 1),
    }


def test_catalog_entries_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TERMS["dizziness"].wording = "Vertigo"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RED_FLAGS["fever"].scale = "0-3"  # type: ignore[misc]


def test_there_are_9_red_flags_in_table_order() -> None:
    assert len(RED_FLAGS) == 9
    assert list(RED_FLAGS) == [row[0] for row in EXPECTED_RED_FLAGS]
    assert all(code == question.code for code, question in RED_FLAGS.items())


@pytest.mark.parametrize(("code", "question", "scale", "source", "loinc"), EXPECTED_RED_FLAGS)
def test_each_red_flag_matches_its_clinical_md_row(
    code: str, question: str, scale: str, source: str, loinc: str | None
) -> None:
    flag = RED_FLAGS[code]
    assert (flag.question, flag.scale, flag.source, flag.loinc) == (question, scale, source, loinc)


def test_only_self_harm_thoughts_is_on_0_to_3() -> None:
    assert RED_FLAGS["self_harm_thoughts"].scale == "0-3"
    assert RED_FLAGS["self_harm_thoughts"].loinc == "44260-8"
    others = [flag for code, flag in RED_FLAGS.items() if code != "self_harm_thoughts"]
    assert all(flag.scale == "yes_no" and flag.loinc is None for flag in others)


def test_gad7_constants() -> None:
    assert GAD7_STEM == "Over the last 2 weeks, how often have you been bothered by the following problems?"
    assert GAD7_ITEMS == (
        ("Feeling nervous, anxious, or on edge", "69725-0"),
        ("Not being able to stop or control worrying", "68509-9"),
        ("Worrying too much about different things", "69733-4"),
        ("Trouble relaxing", "69734-2"),
        ("Being so restless that it is hard to sit still", "69735-9"),
        ("Becoming easily annoyed or irritable", "69689-8"),
        ("Feeling afraid, as if something awful might happen", "69736-7"),
    )
    assert GAD7_PANEL_LOINC == "69737-5"
    assert GAD7_TOTAL_LOINC == "70274-6"
    assert GAD7_ANSWER_LIST == "LL358-3"
    assert GAD7_ANSWER_LOINC == ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")
    assert GAD7_ANSWER_LABELS == ("Not at all", "Several days", "More than half the days", "Nearly every day")
    assert GAD7_ANSWER_LABELS == (
        GAD7_ANSWER_NOT_AT_ALL,
        GAD7_ANSWER_SEVERAL_DAYS,
        GAD7_ANSWER_MORE_THAN_HALF,
        GAD7_ANSWER_NEARLY_EVERY_DAY,
    )
