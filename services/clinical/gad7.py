"""GAD-7 total and severity band (CLINICAL.md 1, Spitzer et al. 2006).

A partial GAD-7 is rejected, never scored: a total from fewer items would understate anxiety.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from services.clinical.catalog import GAD7_ITEMS
from services.clinical.grading import ReportProblem

_ITEM_MAX: Final = 3
_TOTAL_MAX: Final = _ITEM_MAX * len(GAD7_ITEMS)
# Upper bound (inclusive) of each band, in CLINICAL.md 1 order: 0-4, 5-9, 10-14, 15-21.
_BANDS: Final[tuple[tuple[int, str], ...]] = (
    (4, "minimal"),
    (9, "mild"),
    (14, "moderate"),
    (21, "severe"),
)

# CLINICAL.md 1, change between two GAD-7 totals: the minimal clinically important difference
# (Toussaint et al. 2020) and the reliable change index (Bischoff et al. 2020).
GAD7_MCID: Final = 4
GAD7_RCI: Final = 6


def gad7_change_meaning(change: int) -> str:
    """What a change between two GAD-7 totals means by CLINICAL.md 1's MCID (4) and RCI (6) only: the
    size of the change against those two points, and its direction (lower is less anxious)."""
    size = abs(change)
    direction = "improvement" if change < 0 else "worsening"
    if size >= GAD7_RCI:
        return (
            f"reliable {direction}: at least the reliable change index ({GAD7_RCI} points) "
            f"and the minimal clinically important difference ({GAD7_MCID})"
        )
    if size >= GAD7_MCID:
        return (
            f"clinically important {direction}: at least the minimal clinically important difference "
            f"({GAD7_MCID} points), below the reliable change index ({GAD7_RCI})"
        )
    return (
        "no clinically important change: below the minimal clinically important difference "
        f"({GAD7_MCID} points)"
    )


def gad7_band(total: int) -> str:
    """The CLINICAL.md 1 band for a GAD-7 total 0-21."""
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= _TOTAL_MAX:
        raise ReportProblem("total", f"must be a whole number from 0 to {_TOTAL_MAX}")
    for upper, band in _BANDS:
        if total <= upper:
            return band
    raise AssertionError("unreachable: the bands cover 0-21")  # pragma: no cover


def score_gad7(items: Sequence[int]) -> tuple[int, str]:
    """(total, band) for exactly 7 item answers, each 0-3; bools are refused so True never counts as 1."""
    if isinstance(items, str | bytes) or len(items) != len(GAD7_ITEMS):
        raise ReportProblem("items", f"all {len(GAD7_ITEMS)} GAD-7 items are required, each 0-{_ITEM_MAX}")
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= _ITEM_MAX:
            raise ReportProblem(f"items.{index}", f"must be a whole number from 0 to {_ITEM_MAX}")
    total = sum(items)
    return total, gad7_band(total)
