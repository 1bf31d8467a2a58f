"""The report in a real browser: headless Chromium (Debian's package) loads it from a live server with
the provider's token, as a clinic's browser would, and it renders: no console error (a script, a style
or a font refused by the page's Content-Security-Policy would be one), no request beyond the page
itself, pixels drawn, and it prints on A4 and on Letter; and nothing is clipped, on screen or at either
paper's printed width: every chart's marks inside its frame, every table inside its column.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from services.settings import Settings
from tests.browser import Browser, chromium, chromium_or_skip, png_colours, screenshot
from tests.flag_helpers import at, post
from tests.servers import serving
from tests.test_summaries import _scenario
from tests.world import World

WIDTH, HEIGHT = 1280, 1800
# Paper sizes in inches, as Page.printToPDF takes them.
PAPERS = {"A4": (8.27, 11.69), "Letter": (8.5, 11.0)}
# report.css: @page margin 12mm 11mm 14mm; the printed width in CSS pixels (96 a inch) less the sides.
SIDE_MARGINS_IN = 22 / 25.4

# Every chart's marks (bars, lines, dots, cells, bands, markers and their text) against its frame (the
# plotting area, drawn invisible), and everything it draws (axes and labels too) against the <svg>
# itself; every table against its column, and every cell's content against the cell. Half a pixel of
# rounding allowed. Returns the problems found, in words.
_CLIPPED = """
(() => {
  const problems = [];
  const inside = (inner, outer, slack) =>
    inner.left >= outer.left - slack && inner.right <= outer.right + slack &&
    inner.top >= outer.top - slack && inner.bottom <= outer.bottom + slack;
  const box = (r) => `${r.left.toFixed(1)},${r.top.toFixed(1)}-${r.right.toFixed(1)},${r.bottom.toFixed(1)}`;
  const figures = document.querySelectorAll('figure');
  if (figures.length === 0) problems.push('no chart');
  for (const figure of figures) {
    const svg = figure.querySelector('svg');
    const frameRect = svg.querySelector('g.frame rect');
    if (!frameRect) { problems.push(`${figure.id}: no frame`); continue; }
    const frame = frameRect.getBoundingClientRect();
    const whole = svg.getBoundingClientRect();
    if (!inside(frame, whole, 0.5))
      problems.push(`${figure.id}: frame ${box(frame)} outside svg ${box(whole)}`);
    const marks = svg.querySelectorAll('.series *, .bands *');
    for (const mark of marks) {
      const r = mark.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (!inside(r, frame, 0.5))
        problems.push(`${figure.id}: ${mark.tagName} ${box(r)} outside its frame ${box(frame)}`);
    }
    for (const mark of svg.querySelectorAll('text, rect, line, path, circle')) {
      const r = mark.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (!inside(r, whole, 0.5))
        problems.push(`${figure.id}: ${mark.tagName} "${mark.textContent}" ${box(r)} outside ${box(whole)}`);
    }
    const column = figure.parentElement.getBoundingClientRect();
    if (whole.right > column.right + 0.5) problems.push(`${figure.id}: svg wider than its column`);
  }
  for (const table of document.querySelectorAll('table')) {
    if (!table.offsetParent) continue;  // not shown (the charts' data tables are not printed)
    const r = table.getBoundingClientRect();
    const column = table.parentElement.getBoundingClientRect();
    if (r.right > column.right + 0.5 || r.left < column.left - 0.5)
      problems.push(`table ${box(r)} overflows its column ${box(column)}`);
    for (const cell of table.querySelectorAll('th, td')) {
      if (cell.scrollWidth > cell.clientWidth + 1)
        problems.push(`cell "${cell.textContent}" overflows (${cell.scrollWidth} > ${cell.clientWidth})`);
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1)
    problems.push(`page ${page.scrollWidth} wider than ${page.clientWidth}`);
  return problems;
})()
"""


def _layout_problems(browser: Browser, media: str, width: int) -> list[str]:
    browser.send("Emulation.setEmulatedMedia", media=media)
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=HEIGHT, deviceScaleFactor=1, mobile=False
    )
    found = browser.send("Runtime.evaluate", expression=_CLIPPED, returnByValue=True)["result"]["value"]
    return [f"{media} {width}px: {problem}" for problem in found]


@pytest.mark.slow
@pytest.mark.one_database  # the browser reads what the server answers; the database changes nothing
async def test_the_report_renders_in_headless_chromium(
    client: httpx.AsyncClient, world: World, settings: Settings, tmp_path: Path
) -> None:
    path = chromium_or_skip()
    await _scenario(client, world)
    # Marks at every edge of the 21-day window's frames: on its last day (03-12) the highest GAD-7 and
    # rating, a grade-3 side effect (and so a flag), a dose; on its first (02-20) the lowest of each.
    patient = world["patient_a"]
    for on, total, score in ((date(2026, 2, 20), 0, 0), (date(2026, 3, 12), 21, 10)):
        items = [3] * 7 if total else [0] * 7
        await post(
            client, patient, "anxiety", {"recorded_at": at(on, 9), "instrument": "gad7", "items": items}
        )
        await post(
            client, patient, "anxiety", {"recorded_at": at(on, 21), "instrument": "rating", "score": score}
        )
    await post(
        client,
        patient,
        "symptoms",
        {"reported_at": at(date(2026, 3, 12), 12), "code": "dizziness", "severity": 3, "interference": 3},
    )
    await post(client, patient, "doses", {"taken_at": at(date(2026, 3, 12), 8), "dose_mg": 400})
    patient_id = patient.patient_id
    token = world["provider_a"].headers["Authorization"]
    with (
        serving(create_app(settings)) as base,
        chromium(path, tmp_path / "profile", WIDTH, HEIGHT) as browser,
    ):
        url = f"{base}/v1/patients/{patient_id}/report?from=2026-02-20&to=2026-03-12"
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        browser.send("Network.setExtraHTTPHeaders", headers={"Authorization": token})
        browser.send("Page.navigate", url=url)
        browser.wait_for("Page.loadEventFired")
        title = browser.send("Runtime.evaluate", expression="document.title")["result"]["value"]
        pixels = screenshot(browser, WIDTH, HEIGHT)
        pdfs = {
            paper: browser.send("Page.printToPDF", paperWidth=w, paperHeight=h, timeout=60)["data"]
            for paper, (w, h) in PAPERS.items()
        }
        events = list(browser.events)
        # Nothing clipped: on screen, and as printed on each paper (the printed width, print styles),
        # for this 21-day window and for a year (its data all at the left edge).
        problems = []
        for page_url in (url, f"{base}/v1/patients/{patient_id}/report?from=2026-03-01&to=2027-02-28"):
            browser.send("Page.navigate", url=page_url)
            browser.wait_for("Page.loadEventFired")
            widths = [("screen", WIDTH)] + [
                ("print", round((w - SIDE_MARGINS_IN) * 96)) for w, _ in PAPERS.values()
            ]
            for media, width in widths:
                problems += [f"{page_url}: {p}" for p in _layout_problems(browser, media, width)]
            browser.send("Emulation.clearDeviceMetricsOverride")
            browser.send("Emulation.setEmulatedMedia", media="")

    responses = [e["params"]["response"] for e in events if e["method"] == "Network.responseReceived"]
    assert [(r["url"], r["status"], r["mimeType"]) for r in responses] == [(url, 200, "text/html")]
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert requests == [url], requests  # nothing fetched beyond the page: no font, no image, no CDN
    errors = [e["params"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    errors += [
        e["params"]["entry"]
        for e in events
        if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning")
    ]
    errors += [
        e["params"]
        for e in events
        if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"
    ]
    assert errors == []
    assert title.startswith("Report: Patient A")
    colours = png_colours(pixels)
    assert len(colours) > 4, colours  # text, greys and black: a drawn page, not a blank one
    for paper, data in pdfs.items():
        assert data.startswith("JVBERi0"), paper  # base64 of "%PDF-"
    assert problems == [], "\n".join(problems)
