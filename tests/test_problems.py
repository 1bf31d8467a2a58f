"""Every error the app can answer is RFC 9457 problem+json, without internals."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from services.errors import Conflict, NotFound, TooManyRequests

PROBLEM = "application/problem+json"
SECRET_PATIENT_DETAIL = "Jane Roe took 900 mg"


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
