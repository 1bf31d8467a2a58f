"""Posting entries at chosen moments, for rule tests."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.entry_helpers import new_id
from tests.world import Person

NEW_YORK = ZoneInfo("America/New_York")  # patient_a's zone
BASE_DAY = date(2026, 5, 4)


def at(day: date, hour: int = 21, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK).isoformat()


def day(offset: int) -> date:
    return BASE_DAY + timedelta(days=offset)


async def check_in(client: httpx.AsyncClient, person: Person, on: date, **fields: Any) -> dict[str, Any]:
    body = {"id": new_id(), "date": on.isoformat(), "submitted_at": at(on, 22), **fields}
    response = await client.post(
        f"/v1/patients/{person.patient_id}/check-ins", headers=person.headers, json=body
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def post(client: httpx.AsyncClient, person: Person, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"/v1/patients/{person.patient_id}/{kind}", headers=person.headers, json={"id": new_id(), **body}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def symptom_on(
    client: httpx.AsyncClient, person: Person, on: date, code: str, **attrs: Any
) -> dict[str, Any]:
    return await post(client, person, "symptoms", {"reported_at": at(on), "code": code, **attrs})


async def gad7_on(client: httpx.AsyncClient, person: Person, on: date, total: int) -> dict[str, Any]:
    items = [3] * (total // 3) + ([total % 3] if total % 3 else [])
    items += [0] * (7 - len(items))
    return await post(
        client, person, "anxiety", {"recorded_at": at(on), "instrument": "gad7", "items": items}
    )


async def gad7_in_check_in(client: httpx.AsyncClient, person: Person, on: date, total: int) -> dict[str, Any]:
    """A GAD-7 sent as part of a check-in: answered as `gad7_on` answers (the score's id, the flags)."""
    items = [3] * (total // 3) + ([total % 3] if total % 3 else [])
    answer = await check_in(client, person, on, gad7=items + [0] * (7 - len(items)))
    [score] = answer["check_in"]["anxiety"]
    return {**score, "flags": answer["flags"]}


async def dose_on(
    client: httpx.AsyncClient, person: Person, on: date, mg: float, hour: int = 8
) -> dict[str, Any]:
    return await post(client, person, "doses", {"taken_at": at(on, hour), "dose_mg": mg})


def rules(answer: dict[str, Any]) -> set[str]:
    return {flag["rule"] for flag in answer["flags"]}
