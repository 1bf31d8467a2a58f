"""Local dates come from the patient's zone: across DST changes, and for patients who travel."""

from __future__ import annotations

import httpx
import pytest

from tests.entry_helpers import dose
from tests.world import World


async def _local_date(client: httpx.AsyncClient, world: World, taken_at: str) -> str:
    patient = world["patient_a"]
    response = await client.post(
        f"/v1/patients/{patient.patient_id}/doses", headers=patient.headers, json=dose(taken_at=taken_at)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["local_date"])


@pytest.mark.parametrize(
    ("taken_at", "local"),
    [
        # New York springs forward on 2026-03-08 at 02:00 EST (07:00Z): the day has 23 hours.
        ("2026-03-08T04:59:59Z", "2026-03-07"),  # 23:59:59 EST
        ("2026-03-08T05:00:00Z", "2026-03-08"),  # midnight EST
        ("2026-03-08T06:59:00Z", "2026-03-08"),  # 01:59 EST, just before the jump
        ("2026-03-08T07:00:00Z", "2026-03-08"),  # 03:00 EDT, just after
        ("2026-03-09T03:59:59Z", "2026-03-08"),  # 23:59:59 EDT
        ("2026-03-09T04:00:00Z", "2026-03-09"),  # midnight EDT: a day boundary an hour earlier in UTC
        # It falls back on 2026-11-01 at 02:00 EDT (06:00Z): 01:00-02:00 happens twice, the day has 25 hours.
        ("2026-11-01T05:30:00Z", "2026-11-01"),  # 01:30 EDT, the first time
        ("2026-11-01T06:30:00Z", "2026-11-01"),  # 01:30 EST, the second time
        ("2026-11-02T04:59:59Z", "2026-11-01"),  # 23:59:59 EST
        ("2026-11-02T05:00:00Z", "2026-11-02"),
        # The phone's own offset does not matter: the patient's zone does.
        ("2026-07-01T01:30:00+02:00", "2026-06-30"),
    ],
)
async def test_local_dates_follow_new_york_across_dst(
    client: httpx.AsyncClient, world: World, taken_at: str, local: str
) -> None:
    assert await _local_date(client, world, taken_at) == local


async def test_a_travelling_patient_keeps_past_dates_and_gets_new_ones_in_their_new_zone(
    client: httpx.AsyncClient, world: World
) -> None:
    patient = world["patient_a"]
    assert await _local_date(client, world, "2026-06-01T20:00:00Z") == "2026-06-01"  # 16:00 in New York
    moved = await client.patch("/v1/patients/me", headers=patient.headers, json={"timezone": "Asia/Tokyo"})
    assert moved.status_code == 200
    assert await _local_date(client, world, "2026-06-02T20:00:00Z") == "2026-06-03"  # 05:00 in Tokyo
    listed = (await client.get("/v1/patients/me/doses", headers=patient.headers)).json()["items"]
    assert [item["local_date"] for item in listed] == ["2026-06-01", "2026-06-03"]
