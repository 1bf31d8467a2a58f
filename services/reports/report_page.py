"""The printable report as one self-contained HTML page: Jinja2 templates shipped in the package (the
`templates` folder beside this module), the style inline, the charts inline SVG (report_charts.py).

The page needs no script and loads nothing: its Content-Security-Policy allows only its own <style>
block, by hash, so anything else (a script, a font, an image from elsewhere) would be refused.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from services.clinical.catalog import TERMS
from services.reports import report_charts
from services.reports.report_data import FlagSource, ReportData

_TEMPLATES = Path(__file__).parent / "templates"
_CSS = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()}'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

# Severity markers, the same in the flag list and on the flag chart: a shape and a letter, not a colour.
MARKERS = {"urgent": "\u25b2", "high": "\u25c6", "routine": "\u25cb"}
_SOURCE_KINDS = {
    "check_in": "check-in",
    "dose": "dose",
    "anxiety": "anxiety score",
    "symptom": "side-effect report",
    "regimen": "regimen",
}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        auto_reload=False,  # the templates ship in the package: no file check per page
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def term(code: str) -> str:
    found = TERMS.get(code)
    return found.wording if found else code.replace("_", " ")


def mg(value: float) -> str:
    """Whole milligrams without a trailing .0; fractions as given."""
    return f"{value:g}"


def source(item: FlagSource) -> str:
    kind = _SOURCE_KINDS.get(item.kind, item.kind.replace("_", " "))
    text = f"{kind} of {item.day.isoformat()}" if item.day else kind
    return f"{text} (entered in error)" if item.retracted else text


SOURCES_SHOWN = 3  # a flag's sources beyond these are counted, not listed (the CSV and API list them all)


def sources(items: tuple[FlagSource, ...]) -> str:
    """A flag's sources: all when few; else the first few and how many more (a flag with 47 sources
    must not push the next flag to another page)."""
    if len(items) <= SOURCES_SHOWN + 1:
        return "; ".join(source(item) for item in items)
    shown = "; ".join(source(item) for item in items[:SOURCES_SHOWN])
    return f"{len(items)} sources: {shown}; and {len(items) - SOURCES_SHOWN} more"


def plural(count: int, word: str) -> str:
    """The word for a count: "1 day", "2 days" (the number itself is written by the template)."""
    return word if count == 1 else f"{word}s"


def table(found: report_charts.Table) -> Markup:
    """A chart's data as an HTML table, joined here rather than cell by cell in the template: a
    90-day window has hundreds of cells, and html.escape on each is several times cheaper."""
    head = "".join(f'<th scope="col">{escape(h, quote=False)}</th>' for h in found.head)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell), quote=False)}</td>" for cell in row) + "</tr>"
        for row in found.rows
    )
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")  # noqa: S704


def render(data: ReportData, name: str) -> str:
    doses = data.doses
    context: dict[str, Any] = {
        "css": _CSS,
        "name": name,
        "birth_year": data.birth_year,
        "d": data,
        "s": data.summary,
        "g": data.gad7,
        "days": data.days,
        "charts": report_charts.charts(data),
        "missed": sum(day.missed for day in doses),
        "missed_days": sum(1 for day in doses if day.missed),
        "late": sum(day.late for day in doses),
        "above_max": sum(1 for day in doses if day.max_mg is not None and day.taken_mg > day.max_mg),
        "open_flags": data.open_flags,
        "changes": data.regimen_changes,
        "marker": MARKERS,
        "term": term,
        "mg": mg,
        "source": source,
        "sources": sources,
        "plural": plural,
        "table": table,
    }
    return _environment().get_template("report.html.j2").render(context)
