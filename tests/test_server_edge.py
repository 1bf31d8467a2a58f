"""The app behind a real uvicorn server, as `symptrack serve` runs it: a 500 keeps the connection,
answers don't name the server, and X-Forwarded-For counts only from proxies an operator trusts."""

from __future__ import annotations

import logging

import httpx
import pytest

from api.app import create_app
from services.settings import Settings
from tests.servers import serving
from tests.test_log_safety import MARKER, leaks
from tests.test_problems import assert_problem

# The server's behaviour does not depend on the database: SQLite is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _local_address(response: httpx.Response) -> tuple[str, int]:
    """The client's end of the connection the response came on."""
    address: tuple[str, int] = response.extensions["network_stream"].get_extra_info("client_addr")
    return address


def test_a_500_leaves_the_keep_alive_connection_usable(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.NOTSET)
    app = create_app(settings)

    @app.get("/_probe/crash")
    async def crash() -> None:
        raise RuntimeError(f"{MARKER} the patient's words")

    with serving(app) as base, httpx.Client(base_url=base) as http:
        crashed = http.get("/_probe/crash")
        assert_problem(crashed, 500)
        after = http.get("/healthz")  # the phone's next, unrelated request
        assert after.status_code == 200
        assert _local_address(after) == _local_address(crashed), "the connection was not reused"
        # The 500 passed through the stack like any answer: security headers and a request id.
        assert crashed.headers["x-content-type-options"] == "nosniff"
        assert len(crashed.headers["x-request-id"]) == 32
        for response in (crashed, after, http.get("/nothing-here")):
            assert "server" not in response.headers
    messages = [record.getMessage() for record in caplog.records]
    assert not any("Exception in ASGI application" in message for message in messages)
    assert not [r for r in caplog.records if r.name.startswith("uvicorn") and r.levelno >= logging.ERROR]
    assert [m for m in messages if m.startswith("unhandled error")] == ["unhandled error: RuntimeError"]
    assert leaks(caplog.records) == []


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
