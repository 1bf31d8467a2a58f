"""The report in a real browser: headless Chromium (Debian's package) loads it from a live server with
the provider's token, as a clinic's browser would, and it renders: no console error (a script, a style
or a font refused by the page's Content-Security-Policy would be one), no request beyond the page
itself, pixels drawn, and it prints on A4 and on Letter.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.app import create_app
from services.settings import Settings
from tests.browser import chromium, chromium_or_skip, png_colours, screenshot
from tests.servers import serving
from tests.test_summaries import _scenario
from tests.world import World

WIDTH, HEIGHT = 1280, 1800
# Paper sizes in inches, as Page.printToPDF takes them.
PAPERS = {"A4": (8.27, 11.69), "Letter": (8.5, 11.0)}


@pytest.mark.slow
@pytest.mark.one_database  # the browser reads what the server answers; the database changes nothing
async def test_the_report_renders_in_headless_chromium(
    client: httpx.AsyncClient, world: World, settings: Settings, tmp_path: Path
) -> None:
    path = chromium_or_skip()
    await _scenario(client, world)
    patient_id = world["patient_a"].patient_id
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
