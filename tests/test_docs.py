"""/docs is served whole by this server: no request to a CDN, so it works without internet."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.one_database


async def test_the_docs_page_and_everything_it_loads_come_from_this_server(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "swagger" in page.text.lower()
    loaded = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    loaded += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
    assert loaded, "the page names its script and styles"
    assert not [url for url in loaded if "//" in url], loaded  # nothing absolute, nothing elsewhere
    for url in loaded:
        asset = await client.get(url)
        assert asset.status_code == 200, url
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    # The API itself keeps its strict policy.
    assert (await client.get("/healthz")).headers["content-security-policy"].startswith("default-src 'none'")
