"""Every error the app can answer is RFC 9457 problem+json, without internals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from services.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from tests.entry_helpers import dose
from tests.world import World

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database

PROBLEM = "application/problem+json"
SECRET_PATIENT_DETAIL = "Jane Roe took 900 mg"
RFC9110_TITLES = {
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["type"] and body["detail"]
    return body  # type: ignore[no-any-return]


class Probe(BaseModel):
    dose_mg: int = Field(gt=0)


@pytest.fixture
def probing_app(app: FastAPI) -> FastAPI:
    """The real app with a few routes that fail on purpose, to exercise the handlers."""

    @app.post("/_probe/validate")
    async def validate(body: Probe) -> dict[str, int]:
        return {"dose_mg": body.dose_mg}

    @app.get("/_probe/crash")
    async def crash() -> None:
        raise RuntimeError(SECRET_PATIENT_DETAIL)

    @app.get("/_probe/missing")
    async def missing() -> None:
        raise NotFound("No such patient.")

    @app.get("/_probe/conflict")
    async def conflict() -> None:
        raise Conflict("Different content for the same id.")

    @app.get("/_probe/throttled")
    async def throttled() -> None:
        raise TooManyRequests(retry_after_seconds=30)

    @app.get("/_probe/invalid")
    async def invalid() -> None:
        raise ValidationFailed([FieldError(("body", "timezone"), "is not a time zone")])

    @app.get("/_probe/unavailable")
    async def unavailable() -> None:
        raise ServiceUnavailable("Try again shortly.")

    @app.get("/_probe/database-down")
    async def database_down() -> None:
        raise OperationalError("SELECT 1", None, ConnectionResetError())

    return app


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/no-such-thing"), 404)


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_invalid_body_is_422_with_errors_list(probing_app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/_probe/validate", json={"dose_mg": -5})
    body = assert_problem(response, 422)
    assert body["errors"] == [{"loc": ["body", "dose_mg"], "msg": "Input should be greater than 0"}]


async def test_malformed_json_is_422_problem(probing_app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/_probe/validate", content=b"{not json", headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["errors"]


async def test_crash_is_500_without_internals(probing_app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get("/_probe/crash")
    assert_problem(response, 500)
    assert SECRET_PATIENT_DETAIL not in response.text
    assert "RuntimeError" not in response.text and "Traceback" not in response.text


async def test_domain_errors_map_to_their_status(probing_app: FastAPI, client: httpx.AsyncClient) -> None:
    assert assert_problem(await client.get("/_probe/missing"), 404)["detail"] == "No such patient."
    assert_problem(await client.get("/_probe/conflict"), 409)
    throttled = await client.get("/_probe/throttled")
    assert_problem(throttled, 429)
    assert throttled.headers["retry-after"] == "30"


async def test_every_problem_of_a_status_carries_one_title(
    probing_app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Whichever layer answers (a route, a domain error, the body limit by Content-Length or while
    streaming, the rate limiter, FastAPI's validation, a crash, sync's per-entry errors), a status has
    one title: RFC 9110's reason phrase."""
    too_big = b'{"dose_mg": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 65536):
            yield too_big[start : start + 65536]

    json_body = {"content-type": "application/json"}
    answers = [
        await client.get("/v1/me"),
        await client.get("/nothing-here"),
        await client.get("/_probe/missing"),
        await client.delete("/healthz"),
        await client.get("/_probe/conflict"),
        await client.post("/_probe/validate", content=too_big, headers=json_body),
        await client.post("/_probe/validate", content=streamed(), headers=json_body),
        await client.post("/_probe/validate", json={"dose_mg": -5}),
        await client.get("/_probe/invalid"),
        await client.get("/_probe/throttled"),
        await client.get("/_probe/crash"),
        await client.get("/_probe/unavailable"),
        await client.get("/_probe/database-down"),
    ]
    titles: dict[int, set[str]] = {}
    for answer in answers:
        body = answer.json()
        titles.setdefault(body["status"], set()).add(body["title"])
    patient = world["patient_a"]
    entries = [
        {"type": "dose", "patient_id": "me", **dose(dose_mg=-1)},
        {"type": "dose", "patient_id": str(world["patient_b"].patient_id), **dose()},
        {"type": "nonsense"},
    ]
    synced = await client.post("/v1/sync", headers=patient.headers, json={"entries": entries})
    for result in synced.json()["results"]:
        titles.setdefault(result["status"], set()).add(result["error"]["title"])
    # The rate limiter answers before any route: with a limit of one a minute, long spent by now.
    probing_app.state.settings = probing_app.state.settings.model_copy(
        update={"rate_limit_per_address_per_minute": 1}
    )
    limited = [await client.get("/v1/catalog") for _ in range(2)]
    titles.setdefault(429, set()).add(limited[-1].json()["title"])

    assert titles == {status: {title} for status, title in RFC9110_TITLES.items()}


def test_no_domain_error_has_a_title_of_its_own() -> None:
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        assert cls.title is DomainError.title, f"{cls.__name__} overrides the title of its status"


async def test_signing_in_with_json_says_the_endpoint_takes_a_form(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/token", json={"username": "a@b.example", "password": "x" * 10})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "form" in response.json()["detail"] and "not JSON" in response.json()["detail"]
