"""The clinical vocabulary: GAD-7 (CLINICAL.md 1), side-effect terms (2) and red-flag questions (3).

Everything here is transcribed from /work/shared/CLINICAL.md, the only source of clinical content;
change it there first, then here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal


class Attribute(StrEnum):
    """PRO-CTCAE attributes a side-effect report can carry (CLINICAL.md 2)."""

    frequency = "frequency"
    severity = "severity"
    interference = "interference"
    present = "present"


# Short names so TERMS reads like the CLINICAL.md table's F, S, I and "presence" column.
_F: Final = Attribute.frequency
_S: Final = Attribute.severity
_I: Final = Attribute.interference
_P: Final = Attribute.present


@dataclass(frozen=True)
class Term:
    """One side effect of the catalog; `attributes` keeps table order because the first one branches."""

    code: str
    wording: str
    attributes: tuple[Attribute, ...]
    pro_ctcae_item: int | None
    snomed_ct: str | None


# CLINICAL.md 2, in table order. "none (graded as S,I)" items and "none: local code" SNOMED CT are None.
TERMS: Final[dict[str, Term]] = {
    term.code: term
    for term in (
        Term("dizziness", "Dizziness", (_S, _I), 40, "404640003"),
        Term("drowsiness", "Drowsiness or sleepiness", (_S, _I), None, "271782001"),
        Term("coordination", "Problems with balance or coordination", (_S, _I), None, "20262006"),
        Term("limb_swelling", "Swelling of arms or legs", (_F, _S, _I), 22, "271809000"),
        Term("nausea", "Nausea", (_F, _S), 9, "422587007"),
        Term("vomiting", "Vomiting", (_F, _S), 10, "422400008"),
        Term("blurred_vision", "Blurry vision", (_S, _I), 41, "246636008"),
        Term("memory", "Problems with memory", (_S, _I), 47, "386807006"),
        Term("concentration", "Problems with concentration", (_S, _I), 46, "26329005"),
        Term("fatigue", "Fatigue, tiredness or lack of energy", (_S, _I), 53, "84229001"),
        Term("sad_mood", "Sad or unhappy feelings", (_F, _S, _I), 56, None),
        Term("shortness_of_breath", "Shortness of breath", (_S, _I), 19, "267036007"),
        Term("rash", "Rash", (_P,), 24, "271807003"),
        Term("hives", "Hives (itchy red bumps on the skin)", (_P,), 29, "126485001"),
        Term("dry_mouth", "Dry mouth", (_S,), 1, "87715008"),
        Term("constipation", "Constipation", (_S,), 15, "14760008"),
        Term("diarrhea", "Loose or watery stools", (_F,), 16, "62315008"),
    )
}

# CLINICAL.md 2: frequency, severity and interference 0-4; presence 0/1 (no, yes). Bounds are inclusive.
ATTRIBUTE_RANGES: Final[dict[Attribute, tuple[int, int]]] = {
    Attribute.frequency: (0, 4),
    Attribute.severity: (0, 4),
    Attribute.interference: (0, 4),
    Attribute.present: (0, 1),
}


@dataclass(frozen=True)
class RedFlagQuestion:
    """A daily check-in safety question (CLINICAL.md 3); `source` says why the product asks it."""

    code: str
    question: str
    scale: Literal["yes_no", "0-3"]
    source: str
    loinc: str | None


# CLINICAL.md 3, in table order. The self_harm_thoughts row's parenthetical "(0-3, as PHQ-9 item 9,
# LOINC 44260-8)" is carried by `scale` and `loinc`, not by the question text.
RED_FLAGS: Final[dict[str, RedFlagQuestion]] = {
    question.code: question
    for question in (
        RedFlagQuestion(
            "face_swelling",
            "Swelling of your face, lips, tongue or throat?",
            "yes_no",
            "label 5.2 anaphylaxis and angioedema",
            None,
        ),
        RedFlagQuestion(
            "breathing_trouble",
            "Trouble breathing or swallowing?",
            "yes_no",
            "label 5.2 (anaphylaxis, angioedema)",
            None,
        ),
        RedFlagQuestion(
            "slow_breathing",
            "Slow or shallow breathing?",
            "yes_no",
            "FDA safety communication 2019-12-19 (respiratory depression)",
            None,
        ),
        RedFlagQuestion(
            "hard_to_wake",
            "So sleepy that you are hard to wake, confused, or bluish lips or fingers?",
            "yes_no",
            "FDA safety communication 2019-12-19",
            None,
        ),
        RedFlagQuestion(
            "self_harm_thoughts",
            "Thoughts that you would be better off dead, or of hurting yourself?",
            "0-3",
            "label 5.5 suicidal behavior and ideation",
            "44260-8",
        ),
        RedFlagQuestion("fever", "Fever?", "yes_no", "label 5.1 DRESS", None),
        RedFlagQuestion(
            "swollen_glands",
            "Swollen glands in your neck, armpits or groin?",
            "yes_no",
            "label 5.1 DRESS",
            None,
        ),
        RedFlagQuestion(
            "seizure", "A seizure?", "yes_no", "label 5.6 seizures on abrupt discontinuation", None
        ),
        RedFlagQuestion(
            "fall", "A fall or injury?", "yes_no", "label 5.3-5.4 (dizziness, somnolence, driving)", None
        ),
    )
}

# GAD-7, CLINICAL.md 1 (Spitzer et al. 2006).
GAD7_STEM: Final = "Over the last 2 weeks, how often have you been bothered by the following problems?"
GAD7_ITEMS: Final[tuple[tuple[str, str], ...]] = (
    ("Feeling nervous, anxious, or on edge", "69725-0"),
    ("Not being able to stop or control worrying", "68509-9"),
    ("Worrying too much about different things", "69733-4"),
    ("Trouble relaxing", "69734-2"),
    ("Being so restless that it is hard to sit still", "69735-9"),
    ("Becoming easily annoyed or irritable", "69689-8"),
    ("Feeling afraid, as if something awful might happen", "69736-7"),
)
GAD7_PANEL_LOINC: Final = "69737-5"
GAD7_TOTAL_LOINC: Final = "70274-6"
GAD7_ANSWER_LIST: Final = "LL358-3"
# Index = item value 0..3; CLINICAL.md lists the answer codes and labels in value order.
GAD7_ANSWER_LOINC: Final[tuple[str, str, str, str]] = ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")
GAD7_ANSWER_NOT_AT_ALL: Final = "Not at all"
GAD7_ANSWER_SEVERAL_DAYS: Final = "Several days"
GAD7_ANSWER_MORE_THAN_HALF: Final = "More than half the days"
GAD7_ANSWER_NEARLY_EVERY_DAY: Final = "Nearly every day"
GAD7_ANSWER_LABELS: Final[tuple[str, str, str, str]] = (
    GAD7_ANSWER_NOT_AT_ALL,
    GAD7_ANSWER_SEVERAL_DAYS,
    GAD7_ANSWER_MORE_THAN_HALF,
    GAD7_ANSWER_NEARLY_EVERY_DAY,
)
