"""Issue 23's prescribing part over HTTP, on both databases, written from CLINICAL.md section 4: the checks
when a regimen is written (the label maximum by creatinine clearance, 3600 mg, the regimen's own maximum,
override_reason, the warning for 65 and over), dose_above_max under an override, and above_prescribed at
write time, in a sync batch and in the periodic job's safety net. The pure rules are in
tests/test_rules_pure.py; abrupt_stop's revision is in tests/test_time_rules_pure.py and
tests/test_flag_lifecycle.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from models.entries import Dose
from models.flags import Flag
from services.clinical.prescribing import RENAL_MAXIMUM_UNKNOWN
from services.database import session_scope
from services.flags.time_rules import evaluate_time_rules
from tests.entry_helpers import new_id
from tests.flag_helpers import NEW_YORK, at, day, dose_on, rules
from tests.test_write_path_budget import statements
from tests.world import World

OVERRIDE = "Seen by nephrology; renal function stable on this dose for two years."


def _base(world: World) -> str:
    return f"/v1/patients/{world['patient_a'].patient_id}"


async def _set_patient(client: httpx.AsyncClient, world: World, **fields: object) -> None:
    response = await client.patch(_base(world), headers=world["provider_a"].headers, json=fields)
    assert response.status_code == 200, response.text


def _schedule(*doses: float) -> list[dict[str, Any]]:
    return [{"time": f"{8 + 4 * n:02d}:00", "dose_mg": mg} for n, mg in enumerate(doses)]


async def _write(
    client: httpx.AsyncClient, world: World, *doses: float, start: int = -30, **fields: Any
) -> httpx.Response:
    body = {"schedule": _schedule(*doses), "start_date": day(start).isoformat(), **fields}
    return await client.post(f"{_base(world)}/regimens", headers=world["provider_a"].headers, json=body)


def _refused_on_schedule(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [error["loc"] for error in problem["errors"]] == [["body", "schedule"]], problem
    message: str = problem["errors"][0]["msg"]
    return message


# ---- checks when a regimen is written ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("clearance", "limit"),
    [(None, 3600), (60, 3600), (59, 1400), (30, 1400), (29, 700), (15, 700), (14, 300)],
)
async def test_a_schedule_above_the_renal_label_maximum_needs_a_reason(
    client: httpx.AsyncClient, world: World, clearance: float | None, limit: int
) -> None:
    """CLINICAL.md 4: >= 60 mL/min 3600 mg/day; 30-59 1400; 15-29 700; < 15 300; unknown 3600."""
    await _set_patient(client, world, creatinine_clearance_ml_min=clearance)
    at_limit = await _write(client, world, limit / 2, limit / 2)
    assert at_limit.status_code == 201, at_limit.text
    assert at_limit.json()["warnings"] == [] and at_limit.json()["override_reason"] is None
    message = _refused_on_schedule(await _write(client, world, limit / 2, limit / 2 + 1))
    assert f"label maximum of {limit} mg" in message and "override_reason" in message
    kept = await _write(client, world, limit / 2, limit / 2 + 1, override_reason=OVERRIDE)
    assert kept.status_code == 201, kept.text
    assert kept.json()["override_reason"] == OVERRIDE and kept.json()["warnings"] == []


async def test_3600_mg_a_day_whatever_the_clearance(client: httpx.AsyncClient, world: World) -> None:
    await _set_patient(client, world, creatinine_clearance_ml_min=120)
    assert (await _write(client, world, 1800, 1800)).status_code == 201
    message = _refused_on_schedule(await _write(client, world, 1800, 1801))
    assert "3600 mg" in message
    assert (await _write(client, world, 1800, 1801, override_reason=OVERRIDE)).status_code == 201


async def test_a_schedule_above_its_own_maximum_is_refused_even_with_a_reason(
    client: httpx.AsyncClient, world: World
) -> None:
    assert (await _write(client, world, 300, 300, max_daily_mg=600)).status_code == 201
    message = _refused_on_schedule(await _write(client, world, 300, 301, max_daily_mg=600))
    assert "max_daily_mg of 600 mg" in message
    with_reason = await _write(client, world, 300, 301, max_daily_mg=600, override_reason=OVERRIDE)
    _refused_on_schedule(with_reason)
    # Nothing was written by the refusals: one regimen, the first.
    listed = (await client.get(f"{_base(world)}/regimens", headers=world["provider_a"].headers)).json()
    assert len(listed) == 1


async def test_a_refusal_names_the_limit_never_a_dose(client: httpx.AsyncClient, world: World) -> None:
    await _set_patient(client, world, creatinine_clearance_ml_min=20)
    message = _refused_on_schedule(await _write(client, world, 450, 450))
    # What was exceeded (the 900 asked for, the 700 limit), and no other number: no dose proposed.
    numbers = {word for word in message.replace(",", " ").split() if word.isdigit()}
    assert numbers == {"900", "700", "20"}, message


async def test_the_override_shows_in_the_regimen_summary_and_report(
    client: httpx.AsyncClient, world: World
) -> None:
    await _set_patient(client, world, creatinine_clearance_ml_min=20)
    written = await _write(client, world, 450, 450, start=-3, override_reason=OVERRIDE)
    assert written.status_code == 201, written.text
    staff = world["provider_a"].headers
    listed = (await client.get(f"{_base(world)}/regimens", headers=staff)).json()
    assert [r["override_reason"] for r in listed] == [OVERRIDE]
    window = f"from={day(-3).isoformat()}&to={day(0).isoformat()}"
    summary = (await client.get(f"{_base(world)}/summary?{window}", headers=staff)).json()
    assert summary["regimen"]["override_reason"] == OVERRIDE
    report = await client.get(f"{_base(world)}/report?{window}", headers=staff)
    assert report.status_code == 200, report.text
    assert "regimen-override" in report.text and "Seen by nephrology" in report.text
    # The dose chart's ceiling is dose_above_max's: the override regimen's total, not the 700 overridden.
    assert "maximum 900 mg a day" in report.text
    # The patient reads their own summary, reason included (nothing in it is staff-only).
    own = (await client.get(f"/v1/patients/me/summary?{window}", headers=world["patient_a"].headers)).json()
    assert own["regimen"]["override_reason"] == OVERRIDE


@pytest.mark.parametrize(
    ("age", "clearance", "warned"),
    [(65, None, True), (80, None, True), (64, None, False), (65, 80, False), (65, 20, False)],
)
async def test_65_or_over_without_a_creatinine_clearance_is_warned(
    client: httpx.AsyncClient, world: World, age: int, clearance: float | None, warned: bool
) -> None:
    this_year = datetime.now(NEW_YORK).year
    await _set_patient(client, world, birth_year=this_year - age, creatinine_clearance_ml_min=clearance)
    written = await _write(client, world, 100, 100)
    assert written.status_code == 201, written.text
    assert written.json()["warnings"] == ([RENAL_MAXIMUM_UNKNOWN] if warned else [])
    assert (
        RENAL_MAXIMUM_UNKNOWN == "creatinine clearance unknown: the label's renal maximums cannot be applied"
    )


async def test_no_birth_year_no_warning(client: httpx.AsyncClient, world: World) -> None:
    await _set_patient(client, world, birth_year=None, creatinine_clearance_ml_min=None)
    assert (await _write(client, world, 300)).json()["warnings"] == []


# ---- dose_above_max under an override ---------------------------------------------------------------


async def test_a_patient_following_an_override_regimen_is_not_flagged_daily(
    client: httpx.AsyncClient, world: World
) -> None:
    """900 mg a day prescribed with a reason at 20 mL/min (label: 700): taking it raises nothing; more
    than the regimen's own total does, naming that limit."""
    await _set_patient(client, world, creatinine_clearance_ml_min=20)
    assert (await _write(client, world, 450, 450, override_reason=OVERRIDE)).status_code == 201
    patient = world["patient_a"]
    for offset in (-2, -1):
        await dose_on(client, patient, day(offset), 450, hour=8)
        followed = await dose_on(client, patient, day(offset), 450, hour=20)
        assert followed["flags"] == []
    await dose_on(client, patient, day(0), 450, hour=8)
    await dose_on(client, patient, day(0), 450, hour=12)
    over = await dose_on(client, patient, day(0), 1, hour=20)
    assert rules(over) == {"dose_above_max"}
    assert "the prescribed daily total of 900 mg" in over["flags"][0]["reason"]


async def test_an_override_regimen_s_own_maximum_is_the_limit(
    client: httpx.AsyncClient, world: World
) -> None:
    await _set_patient(client, world, creatinine_clearance_ml_min=20)
    written = await _write(client, world, 450, 450, max_daily_mg=1000, override_reason=OVERRIDE)
    assert written.status_code == 201, written.text
    patient = world["patient_a"]
    await dose_on(client, patient, day(0), 900, hour=8)
    assert (await dose_on(client, patient, day(0), 100, hour=12))["flags"] == []
    assert rules(await dose_on(client, patient, day(0), 1, hour=20)) == {"dose_above_max"}


# ---- above_prescribed -------------------------------------------------------------------------------


async def _prescribe_600(client: httpx.AsyncClient, world: World) -> None:
    assert (await _write(client, world, 300, 300)).status_code == 201


@pytest.mark.parametrize(("today_mg", "fires"), [(894, False), (900, True)])
async def test_above_prescribed_at_50_percent_on_the_second_day(
    client: httpx.AsyncClient, world: World, today_mg: float, fires: bool
) -> None:
    """600 mg a day prescribed; 900 (50% above) on day -4; then 894 (49%) or 900 on day 0."""
    await _prescribe_600(client, world)
    patient = world["patient_a"]
    first = await dose_on(client, patient, day(-4), 900)
    assert first["flags"] == []  # one day of 7
    answer = await dose_on(client, patient, day(0), today_mg)
    assert ("above_prescribed" in rules(answer)) is fires
    if fires:
        (flag,) = answer["flags"]
        assert flag["severity"] == "high"
        # (These days are long past: the lifecycle adds when the evidence happened and arrived.)
        assert flag["reason"].startswith(
            f"Took 900 mg on {day(-4).isoformat()} and 900 mg on {day(0).isoformat()}, "
            "50% or more above the prescribed 600 mg a day."
        )
        assert {e["id"] for e in flag["evidence"]} == {first["id"], answer["id"]}


@pytest.mark.parametrize(("offset", "fires"), [(-6, True), (-7, False)])
async def test_above_prescribed_reads_the_last_7_local_days(
    client: httpx.AsyncClient, world: World, offset: int, fires: bool
) -> None:
    """The 7th local day back counts; the 8th does not."""
    await _prescribe_600(client, world)
    patient = world["patient_a"]
    await dose_on(client, patient, day(offset), 1000)
    answer = await dose_on(client, patient, day(0), 1000)
    assert ("above_prescribed" in rules(answer)) is fires


async def test_above_prescribed_adds_up_the_day_s_doses(client: httpx.AsyncClient, world: World) -> None:
    await _prescribe_600(client, world)
    patient = world["patient_a"]
    await dose_on(client, patient, day(-1), 300, hour=8)
    assert (await dose_on(client, patient, day(-1), 600, hour=20))["flags"] == []
    await dose_on(client, patient, day(0), 600, hour=8)
    answer = await dose_on(client, patient, day(0), 300, hour=20)
    assert rules(answer) == {"above_prescribed"}
    assert len(answer["flags"][0]["evidence"]) == 4


async def test_above_prescribed_from_a_sync_batch(client: httpx.AsyncClient, world: World) -> None:
    """An offline phone sends two days at once: the batch's rules see both."""
    await _prescribe_600(client, world)
    patient = world["patient_a"]
    entries = [
        {
            "type": "dose",
            "patient_id": str(patient.patient_id),
            "id": new_id(),
            "taken_at": at(day(d)),
            "dose_mg": 950,
        }
        for d in (-2, -1)
    ]
    response = await client.post("/v1/sync", headers=patient.headers, json={"entries": entries})
    assert response.status_code == 200, response.text
    raised = {f["rule"] for result in response.json()["results"] for f in result["flags"]}
    assert raised == {"above_prescribed"}


async def test_the_periodic_job_raises_above_prescribed_missed_at_write_time(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Doses written around the rules (straight into the table, as two days racing each other might
    leave them): one pass of the time-rules job raises above_prescribed; the next pass does nothing."""
    await _prescribe_600(client, world)
    patient = world["patient_a"]
    ids = {-3: uuid.uuid4(), 0: uuid.uuid4()}
    async with session_scope(app.state.session_factory) as session:
        for offset, dose_id in ids.items():
            taken_at = datetime.fromisoformat(at(day(offset), 9)).astimezone(UTC)
            session.add(
                Dose(
                    id=dose_id,
                    patient_id=patient.patient_id,
                    local_date=day(offset),
                    content_hash=uuid.uuid4().hex,
                    created_at=taken_at + timedelta(minutes=1),
                    created_by=None,
                    taken_at=taken_at,
                    medication="gabapentin",
                    dose_mg=900,
                    status="taken",
                )
            )
    now = datetime.fromisoformat(at(day(0), 12)).astimezone(UTC)
    settings = app.state.settings
    assert await evaluate_time_rules(app.state.session_factory, settings, now=now) >= 1
    async with session_scope(app.state.session_factory) as session:
        found = list((await session.execute(select(Flag).where(Flag.rule == "above_prescribed"))).scalars())  # type: ignore[arg-type]
    assert len(found) == 1
    assert {e["id"] for e in found[0].evidence} == {str(i) for i in ids.values()}
    assert found[0].severity == "high"
    assert await evaluate_time_rules(app.state.session_factory, settings, now=now) == 0


@pytest.mark.one_database
async def test_a_dose_below_the_prescribed_threshold_keeps_the_one_statement(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """With a regimen in force, a dose that leaves the day under 150% of the schedule: the lock and one
    statement (the regimen's schedule and override come in its CTE). One that takes the day to 150% or
    more reads the days around it (one query) and their regimens (one more), and no more."""
    await _prescribe_600(client, world)
    patient = world["patient_a"]
    path = f"{_base(world)}/doses"
    warm = {"id": new_id(), "taken_at": at(day(-10), 8), "dose_mg": 300}
    assert (await client.post(path, headers=patient.headers, json=warm)).status_code == 201
    body = {"id": new_id(), "taken_at": at(day(0), 8), "dose_mg": 600}
    with statements(app) as seen:
        response = await client.post(path, headers=patient.headers, json=body)
    assert response.status_code == 201, response.text
    assert len(seen) == 2, seen
    body = {"id": new_id(), "taken_at": at(day(0), 20), "dose_mg": 300}
    with statements(app) as seen:
        response = await client.post(path, headers=patient.headers, json=body)
    assert response.status_code == 201 and response.json()["flags"] == [], response.text
    assert len(seen) == 4, seen
