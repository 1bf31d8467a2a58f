"""schemathesis against our own /openapi.json, signed in as each role (and as nobody): no 5xx, every
answer matches its documented schema, every error is problem+json. Bounded, so it fits `make test`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.databases import PostgresDatabases
from tests.test_cli import SYMPTRACK
from tests.test_rate_limits import _free_port

pytestmark = pytest.mark.slow
# Derandomized, so every run sends the same cases; SYMPTRACK_FUZZ_EXAMPLES=50 for a deeper run.
EXAMPLES = int(os.environ.get("SYMPTRACK_FUZZ_EXAMPLES", "6"))
ROLES = {
    "admin": "admin@demo.symptrack.test",
    "provider": "provider@demo.symptrack.test",
    "patient": "alex.rivera@demo.symptrack.test",
}
# Signing out would end the role's session for the rest of the run; it has tests of its own.
SKIPPED = {("POST", "/v1/auth/logout")}


@dataclass
class FuzzServer:
    base_url: str
    headers: dict[str, dict[str, str]]


# PostgreSQL only: the stricter database (text it cannot store, ranges), and the production one.
@pytest.fixture(scope="module", params=["postgresql"])
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzServer]:
    postgres: PostgresDatabases | None = None
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        database_url = postgres.recreate(postgres.name("_fuzz"))
    env = {
        **os.environ,
        "SYMPTRACK_DATABASE_URL": database_url,
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_DATA_DIR": str(tmp_path_factory.mktemp("fuzz-data")),  # its generated secret key
        "SYMPTRACK_RATE_LIMIT_PER_TOKEN_PER_MINUTE": "0",
        "SYMPTRACK_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "0",
        "SYMPTRACK_LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000",
        "SYMPTRACK_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
        "SYMPTRACK_ACCESS_TOKEN_MINUTES": "120",
        "SYMPTRACK_LOG_LEVEL": "WARNING",
        "SYMPTRACK_SHUTDOWN_GRACE_SECONDS": "0",  # no balancer to drain from: stop at once
    }
    for command in (["migrate"], ["demo"]):
        subprocess.run([SYMPTRACK, *command], env=env, check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = Path(tmp_path_factory.mktemp("fuzz-log")) / "serve.log"
    process = subprocess.Popen(
        [SYMPTRACK, "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        headers = {}
        for role, email in ROLES.items():
            pair = httpx.post(
                f"{base}/v1/auth/token", data={"username": email, "password": "demo-password"}
            ).json()
            headers[role] = {"Authorization": f"Bearer {pair['access_token']}"}
        headers["anonymous"] = {}
        yield FuzzServer(base, headers)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        if postgres is not None:
            postgres.drop(postgres.name("_fuzz"))


def _check_operation(operation: schemathesis.APIOperation, server: FuzzServer) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def every_role_keeps_the_contract(case: schemathesis.Case) -> None:
        for role, headers in server.headers.items():
            response = case.call(base_url=server.base_url, headers=headers, timeout=30)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
            )
            if response.status_code >= 400:
                found = response.headers.get("content-type") or [""]
                content_type = found[0] if isinstance(found, list) else found
                assert content_type.startswith("application/problem+json"), (role, response.status_code)

    every_role_keeps_the_contract()


def test_every_operation_keeps_its_contract_for_every_role(fuzz_server: FuzzServer) -> None:
    # (Loaded here rather than with schemathesis' pytest plugin, whose fixture loader does not run on
    # this pytest version.)
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    failures = []
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        try:
            _check_operation(operation, fuzz_server)
        except Exception as exc:  # collect them all, then fail with the list
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
