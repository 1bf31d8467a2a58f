"""leather, set up for the printed report: scales for days and rows, and the shapes leather lacks (day
bars, heat-strip cells, bands, a line with its points), made through its extension points (Scale, Shape).

Imported only when a report is drawn (report_charts.py imports it lazily): the rest of the API never
loads leather. Why leather: it writes SVG with the standard library's ElementTree, no browser, no
numpy, no script in its output; it loads in about 60 ms and 5 MB, and draws a chart in a few
milliseconds (pygal: 13-30 ms a chart; matplotlib: 57 MB and a second to load).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import leather
from leather import theme

FONT = "system-ui, Arial, Helvetica, sans-serif"  # the reader's own fonts: nothing is downloaded
# Black on white, greys only: the page is printed in black and white.
for name, value in {
    "background_color": "#fff",
    "margin": 0.016,  # room above the legend's first line
    "title_color": "#000",
    "legend_color": "#000",
    "label_color": "#000",
    "axis_title_color": "#000",
    "tick_color": "#d0d0d0",
    "zero_color": "#000",
    "title_font_family": FONT,
    "legend_font_family": FONT,
    "axis_title_font_family": FONT,
    "tick_font_family": FONT,
    "tick_font_size": 11,
    "tick_font_char_height": 11,
    "tick_font_char_width": 6,
    "legend_font_size": 11,
    "legend_font_char_height": 11,
    "legend_font_char_width": 6,
    "default_series_colors": ["#000", "#555", "#999"],
}.items():
    setattr(theme, name, value)

# Greys of the composite grades 0-3, and the colour of the digit drawn on each.
GRADE_FILL = {0: "#fff", 1: "#d9d9d9", 2: "#8c8c8c", 3: "#262626"}
GRADE_INK = {0: "#000", 1: "#000", 2: "#fff", 3: "#fff"}


PAD_DAYS = 0.5  # empty room either side of the first and last day's slot: nothing drawn touches the frame


class DayScale(leather.Scale):  # type: ignore[misc]
    """Local days 1..n, each centred in a slot of equal width, with half a slot of room at either end
    (today's bar, cell and marker whole, inside the frame): every chart of the page shares it, so one
    day sits at the same place in all of them."""

    def __init__(self, count: int, tick_every: int, label: Callable[[int], str]) -> None:
        self._count = count
        self._tick_every = tick_every
        self._label = label

    def contains(self, v: float) -> bool:
        return 0.5 <= v <= self._count + 0.5

    def project(self, value: float, range_min: float, range_max: float) -> float:
        span = self._count + 2 * PAD_DAYS
        return range_min + (range_max - range_min) * (float(value) - 0.5 + PAD_DAYS) / span

    def project_interval(self, value: float, range_min: float, range_max: float) -> tuple[float, float]:
        low, high = float(value) - 0.5, float(value) + 0.5
        return self.project(low, range_min, range_max), self.project(high, range_min, range_max)

    def ticks(self) -> list[int]:
        return list(range(1, self._count + 1, self._tick_every))

    def format_tick(self, value: float, i: int, count: int) -> str:
        return self._label(int(value))


class Span(leather.Scale):  # type: ignore[misc]
    """low..high exactly, with the ticks given: leather's Linear widens its domain to round ticks,
    which would move a GAD-7 band's edge."""

    def __init__(self, low: float, high: float, ticks: Sequence[float]) -> None:
        self._low, self._high, self._ticks = float(low), float(high), list(ticks)

    def contains(self, v: float) -> bool:
        return self._low <= float(v) <= self._high

    def project(self, value: float, range_min: float, range_max: float) -> float:
        return range_min + (range_max - range_min) * (float(value) - self._low) / (self._high - self._low)

    def project_interval(self, value: float, range_min: float, range_max: float) -> tuple[float, float]:
        raise NotImplementedError  # no bars along a value axis

    def ticks(self) -> list[float]:
        return self._ticks


class RowScale(leather.Scale):  # type: ignore[misc]
    """Rows 1..n from the top, one per side effect (or severity) of a heat strip."""

    def __init__(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)

    def contains(self, v: float) -> bool:
        return 1 <= v <= len(self._labels)

    def project(self, value: float, range_min: float, range_max: float) -> float:
        n = len(self._labels)
        return range_min + (range_max - range_min) * (n - float(value) + 0.5) / n

    def project_interval(self, value: float, range_min: float, range_max: float) -> tuple[float, float]:
        """(top, bottom) of the row's band."""
        above, below = float(value) - 0.5, float(value) + 0.5
        return self.project(above, range_min, range_max), self.project(below, range_min, range_max)

    def ticks(self) -> list[int]:
        return list(range(1, len(self._labels) + 1))

    def format_tick(self, value: float, i: int, count: int) -> str:
        return self._labels[int(value) - 1]


def _text(x: float, y: float, text: str, ink: str = "#000", size: int = 10) -> ET.Element:
    element = ET.Element("text", x=f"{x:.1f}", y=f"{y:.1f}", fill=ink)
    element.set("text-anchor", "middle")
    element.set("dominant-baseline", "central")
    element.set("font-family", FONT)
    element.set("font-size", str(size))
    element.text = text
    return element


class _Quiet(leather.Shape):  # type: ignore[misc]
    """A shape with its own legend entry, or none."""

    legend: str | None = None

    def validate_series(self, series: Any) -> bool:
        return True

    def legend_to_svg(self, series: Any, palette: Any) -> list[Any]:
        return leather.Shape.legend_to_svg(self, series, palette) if self.legend else []


class DayBars(_Quiet):
    """A bar per day from 0 to its value: grey with a black edge."""

    legend = "bars"
    _fill_color = "#bdbdbd"

    def to_svg(
        self, width: float, height: float, x_scale: Any, y_scale: Any, series: Any, palette: Any
    ) -> Any:
        group = ET.Element("g")
        group.set("class", "series day-bars")
        base = y_scale.project(0, height, 0)
        for d in series.data():
            if not d.y:
                continue
            left, right = x_scale.project_interval(d.x, 0, width)
            top = y_scale.project(d.y, height, 0)
            rect = ET.Element(
                "rect",
                x=f"{left + 0.8:.1f}",
                y=f"{top:.1f}",
                width=f"{max(right - left - 1.6, 0.6):.1f}",
                height=f"{float(base) - float(top):.1f}",
                fill=self._fill_color,
                stroke="#000",
            )
            rect.set("stroke-width", "0.6")
            group.append(rect)
        return group


class Frame(_Quiet):
    """The plotting area's outline, drawn invisible: what the browser test holds every mark inside."""

    def to_svg(
        self, width: float, height: float, x_scale: Any, y_scale: Any, series: Any, palette: Any
    ) -> Any:
        group = ET.Element("g")
        group.set("class", "frame")
        ET.SubElement(
            group,
            "rect",
            x="0",
            y="0",
            width=f"{width:.1f}",
            height=f"{height:.1f}",
            fill="none",
            stroke="none",
        )
        return group


class Trend(_Quiet):
    """A line through a series' points and a mark on each: solid for GAD-7, dashed for the rating. Gaps
    are gaps: two points further apart than `max_gap` days are not joined."""

    legend = "line"

    def __init__(self, dasharray: str | None = None, square: bool = False, max_gap: float = 1) -> None:
        self._stroke_color = "#000"
        self._dasharray = dasharray
        self._square = square
        self._max_gap = max_gap

    def to_svg(
        self, width: float, height: float, x_scale: Any, y_scale: Any, series: Any, palette: Any
    ) -> Any:
        group = ET.Element("g")
        group.set("class", "series trend")
        data = [d for d in series.data() if d.y is not None]
        points = [
            (float(x_scale.project(d.x, 0, width)), float(y_scale.project(d.y, height, 0))) for d in data
        ]
        steps = []
        for n, (x, y) in enumerate(points):
            joined = n > 0 and float(data[n].x) - float(data[n - 1].x) <= self._max_gap
            steps.append(f"{'L' if joined else 'M'}{x:.1f} {y:.1f}")
        if any(step.startswith("L") for step in steps):
            path = ET.Element("path", d=" ".join(steps), fill="none", stroke="#000")
            path.set("stroke-width", "1.5")
            if self._dasharray:
                path.set("stroke-dasharray", self._dasharray)
            group.append(path)
        for x, y in points:
            if self._square:
                group.append(ET.Element("rect", x=f"{x - 3:.1f}", y=f"{y - 3:.1f}", width="6", height="6"))
            else:
                group.append(ET.Element("circle", cx=f"{x:.1f}", cy=f"{y:.1f}", r="3.2", fill="#000"))
        return group


class Bands(_Quiet):
    """Horizontal bands behind a chart, each a grey with its name at the right edge (GAD-7 bands)."""

    def __init__(self, bands: Sequence[tuple[float, float, str, str]], labelled: bool = True) -> None:
        self._bands = bands
        self._labelled = labelled

    def to_svg(
        self, width: float, height: float, x_scale: Any, y_scale: Any, series: Any, palette: Any
    ) -> Any:
        group = ET.Element("g")
        group.set("class", "bands")
        for low, high, name, fill in self._bands:
            top, bottom = float(y_scale.project(high, height, 0)), float(y_scale.project(low, height, 0))
            group.append(
                ET.Element(
                    "rect",
                    x="0",
                    y=f"{top:.1f}",
                    width=f"{width:.1f}",
                    height=f"{bottom - top:.1f}",
                    fill=fill,
                )
            )
            if not self._labelled:  # named on the axis instead: no label for a mark to sit on
                continue
            label = _text(float(width) - 4, (top + bottom) / 2, name, size=9)
            label.set("text-anchor", "end")
            label.set("font-style", "italic")
            group.append(label)
        return group


class Cells(_Quiet):
    """A heat strip: a cell per (day, row), its grey and the text written on it given by each datum's
    row: (day, row, fill, text, ink)."""

    def to_svg(
        self, width: float, height: float, x_scale: Any, y_scale: Any, series: Any, palette: Any
    ) -> Any:
        group = ET.Element("g")
        group.set("class", "series cells")
        for d in series.data():
            _, _, fill, text, ink = d.row
            left, right = x_scale.project_interval(d.x, 0, width)
            top, bottom = y_scale.project_interval(d.y, height, 0)
            cell = ET.SubElement(
                group,
                "rect",
                x=f"{left + 0.5:.1f}",
                y=f"{top + 1:.1f}",
                width=f"{max(right - left - 1, 0.5):.1f}",
                height=f"{bottom - top - 2:.1f}",
                fill=fill,
                stroke="#000",
            )
            cell.set("stroke-width", "0.5")
            if text:
                size = int(min(10, max(6, (right - left) * 0.9)))
                group.append(_text((left + right) / 2, (top + bottom) / 2, text, ink, size))
        return group


def chart(
    days: DayScale, y_scale: Any, y_label: Callable[[float, int, int], str], y_ticks: Sequence[float] | None
) -> Any:
    found = leather.Chart()
    found.set_x_scale(days)
    found.set_y_scale(y_scale)
    found.add_x_axis()
    found.add_y_axis(ticks=y_ticks, tick_formatter=y_label)
    add_frame(found)
    return found


def add_frame(found: Any) -> None:
    """The invisible frame, first: one point on the first day (every chart has one)."""
    found.add_series(leather.Series([(1, found_low(found))], name="frame"), Frame())


def found_low(found: Any) -> float:
    ticks = found._scales[1].ticks()  # the y scale's first tick lies in its domain
    return float(ticks[0]) if ticks else 1.0


def add(found: Any, data: Sequence[Any], shape: Any, name: str) -> None:
    found.add_series(leather.Series(list(data), name=name), shape)


def line(dasharray: str, color: str = "#000") -> Any:
    return leather.Line(stroke_color=color, width=1.5, stroke_dasharray=dasharray)


def svg(found: Any, width: int, height: int, title: str, desc: str, ident: str) -> str:
    """The chart as an inline <svg>: scaled by the page, named and described for screen readers."""
    root = ET.Element(
        "svg",
        viewBox=f"0 0 {width} {height}",
        width=str(width),
        height=str(height),
        role="img",
    )
    root.set("aria-labelledby", f"{ident}-title {ident}-desc")
    root.set("preserveAspectRatio", "xMinYMin meet")
    ET.SubElement(root, "title", id=f"{ident}-title").text = title
    ET.SubElement(root, "desc", id=f"{ident}-desc").text = desc
    root.append(found.to_svg_group(width, height))
    out: list[str] = []
    _write(root, out)
    return "".join(out)


def _write(element: ET.Element, out: list[str]) -> None:
    """ElementTree's serializer without its namespace pass (a third of a page's drawing time): these
    trees have plain tags and no namespaces, inline in HTML."""
    out.append("<" + element.tag)
    for name, value in element.items():
        out.append(f' {name}="{escape(str(value))}"')
    if element.text is None and not len(element):
        out.append(" />")
    else:
        out.append(">")
        if element.text:
            out.append(escape(element.text, quote=False))
        for child in element:
            _write(child, out)
        out.append(f"</{element.tag}>")
    if element.tail:
        out.append(escape(element.tail, quote=False))
