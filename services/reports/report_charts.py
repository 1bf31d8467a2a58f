"""The report's charts, on one time axis: daily mg against the schedule and the maximum, missed and late
doses, GAD-7 in its bands, the 0-10 rating, a heat strip per side effect, and the flags.

Each chart is inline SVG with a <title> and <desc> that say what it shows in words, and its data as a
table beside it; nothing rests on colour alone (dashes, greys with the number written on, shapes with
a letter). leather draws them (see chart_shapes.py for why); it is imported here only when a report is
drawn, so no other request pays for it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.reports.report_data import ReportData

WIDTH = 760  # SVG user units; the page scales each chart to its column
LABEL_CHARS = 20  # every chart's y labels take this width, so the days line up from chart to chart
ROW = 22  # a heat strip's row height
STRIP_FRAME = 56  # its margins and day axis
# Each severity's row on the flag chart: its marker, the cell's grey and the marker's ink.
SEVERITIES: tuple[tuple[str, str, str, str], ...] = (
    ("urgent", "\u25b2", "#262626", "#fff"),
    ("high", "\u25c6", "#8c8c8c", "#fff"),
    ("routine", "\u25cb", "#fff", "#000"),
)
GAD7_JOIN_DAYS = 21
# CLINICAL.md 1 bands, edges between whole totals.
GAD7_BANDS: tuple[tuple[float, float, str, str], ...] = (
    (0, 4.5, "minimal 0-4", "#fff"),
    (4.5, 9.5, "mild 5-9", "#f2f2f2"),
    (9.5, 14.5, "moderate 10-14", "#e2e2e2"),
    (14.5, 21, "severe 15-21", "#cccccc"),
)


@dataclass(frozen=True)
class Table:
    head: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class Chart:
    key: str
    caption: str
    svg: str
    legend: str
    table: Table | None = field(default=None)


def _pad(text: str) -> str:
    return text.rjust(LABEL_CHARS)


def _number(value: Any, i: int = 0, count: int = 0) -> str:
    return _pad(f"{float(value):g}")


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def _row_label(labels: list[str]) -> Any:
    return lambda value, i, count: _pad(labels[int(value) - 1])


def _nice_step(top: float) -> float:
    for step in (1, 2, 5, 10, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if top / step <= 5:
            return step
    return 10000


def charts(data: ReportData) -> list[Chart]:
    # leather loads with the first report drawn, never with the app
    from services.reports import chart_shapes as shapes

    count = len(data.days)
    every = 1 if count <= 14 else 7 * math.ceil(count / 7 / 13)
    days = shapes.DayScale(count, every, lambda n: data.days[n - 1].strftime("%m-%d"))
    index = {day: n for n, day in enumerate(data.days, start=1)}
    return [
        _doses(data, days),
        _dose_slots(data, days),
        _gad7(data, days, index),
        _rating(data, days, index),
        _side_effects(data, days, index),
        _flags(data, days, index),
    ]


def _doses(data: ReportData, days: Any) -> Chart:
    from services.reports import chart_shapes as shapes

    doses = data.doses
    top = max([d.taken_mg for d in doses] + [d.scheduled_mg for d in doses] + [d.max_mg or 0 for d in doses])
    top = top or 100
    step = _nice_step(top)
    high = math.ceil(top * 1.05 / step) * step
    ticks = [step * n for n in range(int(high // step) + 1)]
    found = shapes.chart(days, shapes.Span(0, high, ticks), _number, ticks)
    shapes.add(found, [(n, d.taken_mg) for n, d in enumerate(doses, 1)], shapes.DayBars(), "mg taken (bars)")
    scheduled = [(n, d.scheduled_mg if d.max_mg is not None else None) for n, d in enumerate(doses, 1)]
    if any(v is not None for _, v in scheduled):
        shapes.add(found, scheduled, shapes.line("6 3", "#000"), "scheduled mg (dashed)")
        shapes.add(
            found, [(n, d.max_mg) for n, d in enumerate(doses, 1)], shapes.line("1.5 2.5"), "maximum (dotted)"
        )
    taken_days = [d for d in doses if d.taken_mg]
    peak = max(doses, key=lambda d: d.taken_mg) if taken_days else None
    desc = (
        f"Milligrams taken each day, {len(taken_days)} of {len(doses)} days with doses"
        + (f"; most {peak.taken_mg:g} mg on {peak.day}" if peak else "")
        + f". Scheduled: {_ranges([d.scheduled_mg for d in doses if d.max_mg is not None])} mg a day"
        + f"; maximum {_ranges([d.max_mg for d in doses if d.max_mg is not None])} mg a day."
    )
    rows = [
        (
            d.day,
            f"{d.taken_mg:g}",
            f"{d.scheduled_mg:g}" if d.max_mg is not None else "",
            d.max_mg or "",
            d.due,
            d.taken,
            d.missed,
            d.late,
        )
        for d in doses
        if d.taken_mg or d.max_mg is not None
    ]
    return Chart(
        "doses",
        "Daily mg: taken, scheduled and maximum",
        shapes.svg(found, WIDTH, 190, "Daily mg taken against the schedule and the maximum", desc, "doses"),
        "Grey bars: mg taken that day. Dashed line: mg the regimen schedules. Dotted line: the maximum "
        "(the regimen's or the label's for the creatinine clearance, the lower).",
        Table(("Date", "mg taken", "mg scheduled", "maximum mg", "due", "taken", "missed", "late"), rows),
    )


def _ranges(values: list[float | None]) -> str:
    found = sorted({v for v in values if v is not None})
    if not found:
        return "none"
    return f"{found[0]:g}" if len(found) == 1 else f"{found[0]:g} to {found[-1]:g}"


def _dose_slots(data: ReportData, days: Any) -> Chart:
    from services.reports import chart_shapes as shapes

    cells = []
    for n, d in enumerate(data.doses, 1):
        if d.missed:
            cells.append((n, 1, "#262626", str(d.missed), "#fff"))
        if d.late:
            cells.append((n, 2, "#8c8c8c", str(d.late), "#fff"))
    found = shapes.chart(
        days, shapes.RowScale(["missed", "late"]), lambda v, i, c: _pad(("missed", "late")[int(v) - 1]), None
    )
    if cells:
        shapes.add(found, cells, shapes.Cells(), "scheduled doses")
    else:
        shapes.add(found, [(1, 1)], shapes.Bands(()), "nothing scheduled")
    missed = sum(d.missed for d in data.doses)
    late = sum(d.late for d in data.doses)
    desc = (
        f"Of {sum(d.due for d in data.doses)} scheduled doses, {missed} missed on "
        f"{_days(sum(1 for d in data.doses if d.missed))} and {late} taken late on "
        f"{_days(sum(1 for d in data.doses if d.late))}."
    )
    return Chart(
        "dose-slots",
        "Scheduled doses missed and late",
        shapes.svg(found, WIDTH, 2 * ROW + STRIP_FRAME, "Missed and late doses per day", desc, "dose-slots"),
        "The number in a cell counts the scheduled doses missed (dark, top row) or taken more than 60 "
        "minutes from their time (grey, bottom row); no cell, none. The daily mg table holds them too.",
    )


def _gad7(data: ReportData, days: Any, index: dict[date, int]) -> Chart:
    from services.reports import chart_shapes as shapes

    # The bands are named on the axis, at their middles: inside the frame nothing but the marks.
    middles = {(low + high) / 2: name for low, high, name, _ in GAD7_BANDS}
    ticks = list(middles)
    # A little room above 21 and below 0: a dot at either end is drawn whole inside the frame.
    found = shapes.chart(days, shapes.Span(-0.8, 21.8, ticks), lambda v, i, c: _pad(middles[float(v)]), ticks)
    shapes.add(found, [(1, 0)], shapes.Bands(GAD7_BANDS, labelled=False), "bands")
    series = data.summary.gad7.series
    if series:
        # Every 14 days (CLINICAL.md 1): totals up to 3 weeks apart are joined, a longer silence is a gap.
        shapes.add(
            found,
            [(index[p.date], p.total) for p in series],
            shapes.Trend(max_gap=GAD7_JOIN_DAYS),
            "GAD-7 total",
        )
    desc = (
        "GAD-7 totals: " + "; ".join(f"{p.total} ({p.band}) on {p.date}" for p in series) + "."
        if series
        else "No GAD-7 in the window."
    )
    return Chart(
        "gad7",
        "GAD-7 total (0-21) in its bands",
        shapes.svg(found, WIDTH, 150, "GAD-7 totals over the window", desc, "gad7"),
        "Solid line and dots: GAD-7 totals (not joined across more than 3 weeks without one). Shaded "
        "bands, named on the left: minimal 0-4, mild 5-9, moderate 10-14, severe 15-21.",
        Table(("Date", "GAD-7 total", "band"), [(p.date, p.total, p.band) for p in series]),
    )


def _rating(data: ReportData, days: Any, index: dict[date, int]) -> Chart:
    from services.reports import chart_shapes as shapes

    ticks = [0, 5, 10]
    found = shapes.chart(days, shapes.Span(-0.6, 10.6, ticks), _number, ticks)  # room for a square at 0 or 10
    series = data.summary.rating.series
    if series:
        shapes.add(
            found, [(index[p.date], p.score) for p in series], shapes.Trend("4 3", square=True), "rating"
        )
    else:
        shapes.add(found, [(1, 0)], shapes.Bands(()), "no rating")
    scores = [p.score for p in series]
    desc = (
        f"Daily anxiety rating on {len({p.date for p in series})} days: mean {data.summary.rating.mean}, "
        f"lowest {min(scores)}, highest {max(scores)}; last {scores[-1]} on {series[-1].date}."
        if series
        else "No daily rating in the window."
    )
    return Chart(
        "rating",
        "Daily anxiety rating (0 not at all - 10 worst imaginable)",
        shapes.svg(found, WIDTH, 110, "Daily anxiety ratings over the window", desc, "rating"),
        "Dashed line and squares: the day's rating; the line is broken where a day has none.",
        Table(("Date", "rating"), [(p.date, p.score) for p in series]),
    )


def _side_effects(data: ReportData, days: Any, index: dict[date, int]) -> Chart:
    from services.reports import chart_shapes as shapes

    codes = [code for code, found in data.symptoms.items() if found]
    labels = [code.replace("_", " ").capitalize() for code in codes]
    cells = []
    rows = []
    for row, code in enumerate(codes, 1):
        for entry in data.symptoms[code]:
            if entry.grade is None:  # a presence-only term: present or not, no grade
                cells.append((index[entry.day], row, "#fff", "+" if entry.present else "", "#000"))
                grade = "present" if entry.present else "absent"
            else:
                ink = shapes.GRADE_INK[entry.grade]
                cells.append((index[entry.day], row, shapes.GRADE_FILL[entry.grade], str(entry.grade), ink))
                grade = str(entry.grade)
            rows.append((entry.day, labels[row - 1], grade))
    rows.sort()
    found = shapes.chart(
        days, shapes.RowScale(labels or [""]), lambda v, i, c: _pad((labels or [""])[int(v) - 1]), None
    )
    if cells:
        shapes.add(found, cells, shapes.Cells(), "grades")
    else:
        shapes.add(found, [(1, 1)], shapes.Bands(()), "none")
    worst = {s.code: s for s in data.summary.symptoms}
    desc = (
        "; ".join(
            f"{label}: reported on {worst[code].days} days, worst grade "
            + ("present" if worst[code].max_grade is None else str(worst[code].max_grade))
            for code, label in zip(codes, labels, strict=True)
            if code in worst
        )
        + "."
        if codes
        else "No side effect reported in the window."
    )
    return Chart(
        "side-effects",
        "Side effects: the day's worst composite grade (0-3)",
        shapes.svg(
            found,
            WIDTH,
            max(len(codes), 1) * ROW + STRIP_FRAME,
            "Side-effect grades per day",
            desc,
            "side-effects",
        ),
        "A cell per day reported, darker for a higher grade, with the grade written in it; "
        "+ marks a rash or hives reported present.",
        Table(("Date", "side effect", "grade"), rows),
    )


def _flags(data: ReportData, days: Any, index: dict[date, int]) -> Chart:
    from services.reports import chart_shapes as shapes

    raised = [f for f in data.flags if f.observed_on in index]
    per_cell = Counter((index[f.observed_on], f.severity.value) for f in raised)
    cells = []
    for row, (severity, marker, fill, ink) in enumerate(SEVERITIES, 1):
        for (day, found_severity), n in per_cell.items():
            if found_severity == severity:
                cells.append((day, row, fill, marker + (str(n) if n > 1 else ""), ink))
    labels = [f"{severity} {marker}" for severity, marker, _, _ in SEVERITIES]
    found = shapes.chart(days, shapes.RowScale(labels), _row_label(labels), None)
    if cells:
        shapes.add(found, cells, shapes.Cells(), "flags")
    else:
        shapes.add(found, [(1, 1)], shapes.Bands(()), "none")
    by_severity: dict[str, int] = defaultdict(int)
    for flag in raised:
        by_severity[flag.severity.value] += 1
    desc = (
        f"{len(raised)} flags raised in the window: "
        + ", ".join(f"{by_severity[s]} {s}" for s, *_ in SEVERITIES if by_severity[s])
        + ". "
        + "; ".join(f"{f.observed_on} {f.severity.value} {f.rule.replace('_', ' ')}" for f in raised)
        + "."
        if raised
        else "No flag raised in the window."
    )
    return Chart(
        "flags",
        "Flags raised, by severity",
        shapes.svg(found, WIDTH, 3 * ROW + STRIP_FRAME, "Flags raised per day by severity", desc, "flags"),
        "\u25b2 urgent, \u25c6 high, \u25cb routine, on the day its evidence happened "
        "(a number: more than one).",
        Table(
            ("Observed", "severity", "rule", "status"),
            [
                (f.observed_at.strftime("%Y-%m-%d %H:%M"), f.severity.value, f.rule, f.status.value)
                for f in raised
            ],
        ),
    )
