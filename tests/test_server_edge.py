"""The app behind a real uvicorn server, as `symptrack serve` runs it: X-Forwarded-For counts only
from proxies an operator trusts."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from services.settings import Settings
from tests.servers import serving

# The server's behaviour does not depend on the database: SQLite is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _limited(settings: Settings, **overrides: object) -> Settings:
    # Two requests a minute per address, none per token: the third from one address is refused.
    return settings.model_copy(
        update={"rate_limit_per_address_per_minute": 2, "rate_limit_per_token_per_minute": 0, **overrides}
    )


def _catalog(http: httpx.Client, forwarded_for: str) -> int:
    return http.get("/v1/catalog", headers={"x-forwarded-for": forwarded_for}).status_code


def test_forwarded_for_is_ignored_by_default(settings: Settings) -> None:
    with serving(create_app(_limited(settings))) as base, httpx.Client(base_url=base) as http:
        # Each request claims another client; all count against the real one, 127.0.0.1.
        statuses = [_catalog(http, f"198.51.100.{n}") for n in (1, 2, 3)]
    assert statuses == [200, 200, 429]


def test_forwarded_for_counts_from_a_trusted_proxy(settings: Settings) -> None:
    trusting = _limited(settings, forwarded_allow_ips="127.0.0.1")
    with serving(create_app(trusting)) as base, httpx.Client(base_url=base) as http:
        statuses = [_catalog(http, f"198.51.100.{n}") for n in (1, 2, 3)]
        assert statuses == [200, 200, 200]  # three clients behind the proxy, one request each
        assert [_catalog(http, "198.51.100.1") for _ in range(2)] == [200, 429]
