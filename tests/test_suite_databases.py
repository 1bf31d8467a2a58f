"""The suite's own PostgreSQL needs: a stock server (only its `postgres` database) is enough, and
under CI=true a server that doesn't answer fails the PostgreSQL tests instead of skipping them."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tests import databases

CLOSED_PORT_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/postgres"


def test_the_default_server_url_needs_only_the_postgres_database() -> None:
    assert make_url(databases.DEFAULT_TEST_POSTGRES_URL).database == "postgres"
    # A URL naming only the server creates databases through `postgres` too.
    assert make_url(databases.admin_conninfo("postgresql+asyncpg://u@db:5432")).database == "postgres"


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_no_postgresql_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("SYMPTRACK_TEST_POSTGRES_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("CI", ci)
    unavailable = databases.postgres_unavailable_reason()
    assert unavailable is not None
    with pytest.raises(outcome):
        databases.require_postgres(unavailable)
