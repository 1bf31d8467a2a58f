"""Doses and sync batches take a slot; an urgent check-in and every read pass them (api/fair_share.py).

PostgreSQL only: a held table lock keeps the first dose in its slot for as long as the test needs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from services.settings import Settings
from tests.databases import settings_for
from tests.entry_helpers import dose, new_id, rating
from tests.flag_helpers import at, day
from tests.world import World

pytestmark = pytest.mark.one_database


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url).model_copy(update={"bulk_write_slots": 1})


async def _backends_waiting_for_a_lock(connection: AsyncConnection) -> int:
    await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
    waiting = await connection.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
    )
    return int(waiting or 0)


async def _until(condition: object) -> None:
    for _ in range(1000):
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_doses_wait_for_a_slot_while_check_ins_and_reads_pass(
    app: FastAPI, client: httpx.AsyncClient, world: World, database_url: str
) -> None:
    patient = world["patient_a"]
    base = f"/v1/patients/{patient.patient_id}"
    outsider = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with outsider.connect() as holder:
            await holder.execute(text("LOCK TABLE dose IN EXCLUSIVE MODE"))  # reads pass, inserts wait
            doses = f"{base}/doses"
            first = asyncio.create_task(client.post(doses, json=dose(), headers=patient.headers))
            await _until(lambda: _backends_waiting_for_a_lock(holder))
            second = asyncio.create_task(client.post(doses, json=dose(), headers=patient.headers))

            async def second_waits_for_the_slot() -> bool:
                return bool(app.state.bulk_slots.waiting == 1)

            await _until(second_waits_for_the_slot)
            # The second dose waits here, not in the database: one backend waits for the lock.
            assert await _backends_waiting_for_a_lock(holder) == 1
            metrics = await client.get("/metrics")
            assert "symptrack_bulk_writes_waiting 1" in metrics.text
            # Meanwhile a red-flag check-in without doses, a rating and reads are answered at once.
            today = day(0)
            red_flag = {"id": new_id(), "date": today.isoformat(), "submitted_at": at(today, 22)}
            red_flag["red_flags"] = {"face_swelling": True}
            urgent = await client.post(f"{base}/check-ins", json=red_flag, headers=patient.headers)
            assert urgent.status_code == 201, urgent.text
            assert urgent.json()["flags"]
            scored = await client.post(f"{base}/anxiety", json=rating(3), headers=patient.headers)
            assert scored.status_code == 201
            assert (await client.get(f"{base}/summary", headers=patient.headers)).status_code == 200
            assert not first.done() and not second.done()
            await holder.rollback()
        assert (await first).status_code == 201
        assert (await second).status_code == 201
        assert app.state.bulk_slots.waiting == 0
    finally:
        await outsider.dispose()
