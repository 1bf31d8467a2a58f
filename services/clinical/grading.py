"""Side-effect report checks and the composite grade 0-3 (CLINICAL.md 2, Basch et al. 2021).

The grade tables are transcribed cell by cell from CLINICAL.md rather than computed by a formula, so a
reviewer can compare them with the source and flag rules (CLINICAL.md 4) grade exactly as documented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from services.clinical.catalog import ATTRIBUTE_RANGES, TERMS, Attribute, Term

_F: Final = Attribute.frequency
_S: Final = Attribute.severity
_I: Final = Attribute.interference
_P: Final = Attribute.present

# Three attributes (F, S, I): one table per frequency 1-4; rows severity 0-4, columns interference 0-4.
# Index as _THREE_ATTRIBUTES[frequency - 1][severity][interference].
_THREE_ATTRIBUTES: Final[tuple[tuple[tuple[int, ...], ...], ...]] = (
    (  # F=1
        (0, 1, 1, 2, 2),  # S0
        (1, 1, 1, 2, 2),  # S1
        (1, 2, 2, 2, 3),  # S2
        (2, 2, 2, 3, 3),  # S3
        (2, 2, 3, 3, 3),  # S4
    ),
    (  # F=2
        (0, 1, 1, 2, 2),  # S0
        (1, 1, 1, 2, 2),  # S1
        (2, 2, 2, 3, 3),  # S2
        (2, 2, 2, 3, 3),  # S3
        (2, 2, 3, 3, 3),  # S4
    ),
    (  # F=3
        (1, 1, 1, 2, 2),  # S0
        (1, 1, 1, 2, 2),  # S1
        (2, 2, 2, 3, 3),  # S2
        (2, 2, 3, 3, 3),  # S3
        (2, 2, 3, 3, 3),  # S4
    ),
    (  # F=4
        (1, 1, 1, 2, 2),  # S0
        (1, 1, 2, 2, 3),  # S1
        (2, 2, 2, 3, 3),  # S2
        (2, 2, 3, 3, 3),  # S3
        (2, 2, 3, 3, 3),  # S4
    ),
)

# Two attributes: rows first attribute 1-4, columns second attribute 0-4.
# Index as table[first - 1][second].
_F_THEN_S: Final[tuple[tuple[int, ...], ...]] = (
    (1, 1, 1, 2, 2),  # F=1
    (1, 1, 2, 2, 2),  # F=2
    (1, 1, 2, 3, 3),  # F=3
    (1, 1, 2, 3, 3),  # F=4
)
_S_THEN_I: Final[tuple[tuple[int, ...], ...]] = (
    (1, 1, 1, 2, 2),  # S=1
    (1, 1, 2, 2, 3),  # S=2
    (1, 2, 2, 3, 3),  # S=3
    (2, 2, 2, 3, 3),  # S=4
)
# No catalog term is F, I today; the table is kept so adding one needs no new clinical transcription.
_F_THEN_I: Final[tuple[tuple[int, ...], ...]] = (
    (1, 1, 1, 2, 2),  # F=1
    (1, 1, 1, 2, 2),  # F=2
    (1, 1, 2, 3, 3),  # F=3
    (1, 1, 2, 3, 3),  # F=4
)

# One attribute: grade for score 0-4. Index as table[score].
_FREQUENCY_ONLY: Final[tuple[int, ...]] = (0, 1, 1, 2, 3)
_SEVERITY_ONLY: Final[tuple[int, ...]] = (0, 1, 2, 3, 3)

_TWO_ATTRIBUTE_TABLES: Final[dict[tuple[Attribute, ...], tuple[tuple[int, ...], ...]]] = {
    (_F, _S): _F_THEN_S,
    (_S, _I): _S_THEN_I,
    (_F, _I): _F_THEN_I,
}
_ONE_ATTRIBUTE_TABLES: Final[dict[tuple[Attribute, ...], tuple[int, ...]]] = {
    (_F,): _FREQUENCY_ONLY,
    (_S,): _SEVERITY_ONLY,
}


class ReportProblem(ValueError):
    """A report the clinical rules refuse; `field` names the offending input so the API can point at it."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.field = field
        self.msg = msg


def _term(code: str) -> Term:
    term = TERMS.get(code)
    if term is None:
        raise ReportProblem("code", f"unknown side-effect code {code!r}")
    return term


def _checked_value(attribute: Attribute, value: object) -> int:
    """Refuse bools too: True would otherwise pass as 1 and hide a client bug."""
    low, high = ATTRIBUTE_RANGES[attribute]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportProblem(attribute.value, f"must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ReportProblem(attribute.value, f"must be from {low} to {high}, got {value}")
    return int(value)


def complete_attributes(code: str, given: Mapping[str, int | None]) -> dict[str, int]:
    """Validate a report's attributes and apply PRO-CTCAE conditional branching (CLINICAL.md 2).

    The first attribute is always required. When it is 0 the later ones may be omitted or None and are
    filled with 0 (they were never asked); when it is above 0 every attribute of the term is required.
    """
    term = _term(code)
    names = [attribute.value for attribute in term.attributes]
    for key in given:
        if key not in names:
            raise ReportProblem(
                str(key), f"{code} has no attribute {key!r}; its attributes are {', '.join(names)}"
            )
    values: dict[str, int | None] = {}
    for attribute in term.attributes:
        value = given.get(attribute.value)
        values[attribute.value] = None if value is None else _checked_value(attribute, value)

    first, *later = term.attributes
    first_value = values[first.value]
    if first_value is None:
        raise ReportProblem(first.value, f"is required: it is the first attribute of {code}")
    completed: dict[str, int] = {first.value: first_value}
    for attribute in later:
        value = values[attribute.value]
        if first_value == 0:
            if value not in (None, 0):
                raise ReportProblem(
                    attribute.value,
                    f"must be 0 or omitted when {first.value} is 0: the later questions are not asked "
                    "(conditional branching)",
                )
            completed[attribute.value] = 0
        else:
            if value is None:
                raise ReportProblem(attribute.value, f"is required when {first.value} is above 0")
            completed[attribute.value] = value
    return completed


def composite_grade(code: str, attributes: Mapping[str, int]) -> int | None:
    """The report's composite grade 0-3, or None for presence-only terms (CLINICAL.md 2, Basch 2021).

    Expects the output of complete_attributes: every attribute of the term present; anything else is
    refused rather than guessed, because a wrong grade would silently change which flags fire.
    """
    term = _term(code)
    for attribute in term.attributes:
        if attributes.get(attribute.value) is None:
            raise ReportProblem(
                attribute.value, "is missing: composite_grade expects attributes from complete_attributes"
            )
    values = complete_attributes(code, attributes)
    shape = term.attributes
    if shape == (_P,):
        return None
    scores = [values[attribute.value] for attribute in shape]
    if scores[0] == 0:
        return 0
    if shape == (_F, _S, _I):
        return _THREE_ATTRIBUTES[scores[0] - 1][scores[1]][scores[2]]
    if shape in _TWO_ATTRIBUTE_TABLES:
        return _TWO_ATTRIBUTE_TABLES[shape][scores[0] - 1][scores[1]]
    if shape in _ONE_ATTRIBUTE_TABLES:
        return _ONE_ATTRIBUTE_TABLES[shape][scores[0]]
    raise ReportProblem("code", f"{code} has no composite-grade table for attributes {', '.join(shape)}")
