"""The printable report: the hand-worked scenario of test_summaries.py read off the page, the same
numbers as the JSON summary; who may read it; its window.

Beyond the summary's numbers, the scenario's days by hand (scheduled slots whose time has come):
- 03-07: 2 due, 1 taken on time, 1 missed (skipped).      scheduled 600 mg
- 03-08: 2 due, 2 taken, 1 on time, 1 late (21:30).        scheduled 600 mg
- 03-09: 3 due, 2 taken on time, 1 missed (in error).      scheduled 1200 mg (regimen B from 03-09)
- 03-10: 3 due, 1 taken on time, 2 missed.                 scheduled 1200 mg
Missed 4 on 3 days, late 1. GAD-7 12 -> 8: -4, the MCID, below the RCI: a clinically important
improvement. Dizziness: grade 1 on 03-07, 2 on 03-09 (grades 2 and 1 that day); nausea grade 2 on 03-08.
Open flags: severe_symptom (dizziness, from the report of 03-09) and anxiety_severe (from the GAD-7 of
03-09 later entered in error, and the GAD-7 of 03-07).
"""

from __future__ import annotations

import ast
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.test_summaries import _scenario
from tests.world import World

WINDOW = "from=2026-03-07&to=2026-03-10"


class _Page(HTMLParser):
    """The text of every element with an id, and the page's attributes, for reading labelled values."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.open: list[tuple[str, str | None]] = []
        self.attributes: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes.extend((tag, name, value) for name, value in attrs)
        if tag in ("br", "meta", "link", "img", "input", "hr", "path", "line", "rect", "circle"):
            ident = dict(attrs).get("id")
            if ident:
                self.by_id[ident] = ""
            return
        ident = dict(attrs).get("id")
        self.open.append((tag, ident))
        if ident:
            self.by_id[ident] = ""

    def handle_endtag(self, tag: str) -> None:
        self.handle_data(" ")  # cells and items read apart
        while self.open:
            name, _ = self.open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self.open:
            if ident:
                self.by_id[ident] += data

    def text(self, ident: str) -> str:
        return " ".join(self.by_id[ident].split())


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


async def test_the_page_holds_the_hand_worked_numbers_and_the_summarys(
    client: httpx.AsyncClient, world: World
) -> None:
    await _scenario(client, world)
    path = f"/v1/patients/{world['patient_a'].patient_id}"
    headers = world["provider_a"].headers
    response = await client.get(f"{path}/report?{WINDOW}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    summary = (await client.get(f"{path}/summary?{WINDOW}", headers=headers)).json()
    page = parse(response.text)

    assert page.text("window") == "2026-03-07 to 2026-03-10"
    assert page.text("timezone") == "America/New_York"
    # The summary's numbers, as the JSON gives them and as worked by hand.
    adherence = summary["adherence"]
    assert page.text("adherence-percent") == f"{adherence['percent']:.1f}" == "60.0"
    assert page.text("adherence-taken") == str(adherence["taken"]) == "6"
    assert page.text("adherence-scheduled") == str(adherence["scheduled"]) == "10"
    assert page.text("on-time-percent") == f"{adherence['on_time_percent']:.1f}" == "50.0"
    gad7 = summary["gad7"]
    assert (page.text("gad7-first"), page.text("gad7-last")) == (str(gad7["first"]), str(gad7["last"]))
    assert (page.text("gad7-first"), page.text("gad7-last"), page.text("gad7-change")) == ("12", "8", "-4")
    assert page.text("gad7-band") == gad7["last_band"] == "mild"
    assert page.text("gad7-meaning").startswith("clinically important improvement")
    assert page.text("rating-mean") == str(summary["rating"]["mean"]) == "5.0"
    assert page.text("check-in-days") == "2" and page.text("check-in-percent") == "50.0"
    flags = summary["open_flags"]
    assert [page.text(f"open-{s}") for s in ("urgent", "high", "routine")] == [
        str(flags[s]) for s in ("urgent", "high", "routine")
    ]
    assert (flags["urgent"], flags["high"], flags["routine"]) == (0, 2, 0)
    for symptom in summary["symptoms"]:
        cells = page.text(f"symptom-{symptom['code']}").split()
        assert cells[-4:] == [str(symptom[k]) for k in ("reports", "days", "max_grade", "last_grade")]
    # What only the page shows, by hand.
    assert (page.text("missed"), page.text("missed-days"), page.text("late")) == ("4", "3", "1")
    assert page.text("days-above-max") == "0"
    assert page.text("regimen-schedule") == "08:00 400 mg, 14:00 400 mg, 22:00 400 mg"
    assert page.text("regimen-daily-mg") == "1200"
    assert page.text("regimen-changes").count("2026-03-0") == 3  # A ends 03-08; B starts 03-09
    open_flags = page.text("flags")
    assert "severe symptom (Dizziness)" in open_flags and "anxiety severe" in open_flags
    assert "side-effect report of 2026-03-09" in open_flags
    assert "anxiety score of 2026-03-09 (entered in error)" in open_flags
    assert "anxiety score of 2026-03-07" in open_flags
    # The charts: inline SVG, each named and described for screen readers, on the window's 4 days.
    charts = ("doses", "dose-slots", "gad7", "rating", "side-effects", "flags")
    for chart in charts:
        assert page.text(f"{chart}-title") and page.text(f"{chart}-desc"), chart
    svgs = [value for tag, name, value in page.attributes if tag == "svg" and name == "aria-labelledby"]
    assert svgs == [f"{chart}-title {chart}-desc" for chart in charts]
    assert "12 (moderate) on 2026-03-07; 8 (mild) on 2026-03-10" in page.text("gad7-desc")
    assert (
        page.text("dose-slots-desc") == "Of 10 scheduled doses, 4 missed on 3 days and 1 taken late on 1 day."
    )
    assert "Dizziness: reported on 2 days, worst grade 2" in page.text("side-effects-desc")
    # Nothing for a browser to fetch, and no script.
    assert "<script" not in response.text and "http://" not in response.text
    assert "https://" not in response.text


@pytest.mark.one_database  # who may read is decided before any query the databases answer differently
async def test_who_reads_the_report_and_its_window(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    path = f"/v1/patients/{patient.patient_id}/report"
    own = await client.get("/v1/patients/me/report", headers=patient.headers)
    assert own.status_code == 200 and own.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in own.headers["content-security-policy"]
    start, end = parse(own.text).text("window").split(" to ")
    assert (date.fromisoformat(end) - date.fromisoformat(start)).days == 89  # the last 90 local days
    assert (await client.get(path, headers=world["admin_a"].headers)).status_code == 200
    for other in ("provider_a2", "patient_b", "patient_a2"):
        denied = await client.get(path, headers=world[other].headers)
        assert denied.status_code == 404, other
        assert denied.headers["content-type"] == "application/problem+json"
    for window in ("from=2026-03-10&to=2026-03-01", "from=2020-01-01&to=2026-03-01", "from=yesterday"):
        wrong = await client.get(f"{path}?{window}", headers=world["provider_a"].headers)
        assert wrong.status_code == 422, window
        assert wrong.headers["content-type"] == "application/problem+json"
        assert wrong.json()["errors"][0]["loc"][:2] == ["query", "from"]


def test_only_drawing_a_report_imports_the_charting_library() -> None:
    """leather is imported when a report is drawn, not with the app: no module but chart_shapes imports
    it, and chart_shapes itself is imported only inside functions (report_charts.py)."""
    root = Path(__file__).resolve().parent.parent
    at_import: list[str] = []
    for path in [p for layer in ("api", "models", "services") for p in (root / layer).rglob("*.py")]:
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:  # statements run when the module is imported
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            if any(n == "leather" or n.startswith("leather.") for n in names) and module != (
                "services.reports.chart_shapes"
            ):
                at_import.append(module)
            if "services.reports.chart_shapes" in names:
                at_import.append(module)
    assert at_import == []
