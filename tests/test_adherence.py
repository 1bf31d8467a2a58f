"""The panel's 7-day adherence (counted in SQL, with only yesterday and today laid over the clock in
Python) against the summary's (the schedule laid over each day), and the clock's shortcut against
zone-aware instants across clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from models.accounts import Role
from models.base import utcnow
from services.accounts import users as accounts
from services.accounts.auth import start_session
from services.database import session_scope
from services.localtime import local_instant
from services.reports.summaries import Clock, micros
from tests.flag_helpers import post
from tests.world import Person, World

# Either side of UTC, so that the patients' "today" differs for much of the day.
ZONES = ("America/New_York", "Asia/Kolkata", "Pacific/Auckland", "America/Los_Angeles")


async def _patients(app: FastAPI, world: World) -> list[Person]:
    people = []
    async with session_scope(app.state.session_factory) as session:
        for n, zone in enumerate(ZONES):
            record = await accounts.create_patient(
                session,
                organization_id=world.organizations["A"],
                email=f"adherence.{n}@a.example",
                name=f"Adherence {n}",
                timezone=zone,
            )
            pair = await start_session(session, app.state.settings, record.user_id, utcnow())
            people.append(
                Person(f"Adherence {n}", record.user_id, Role.patient, pair.access_token, "", record.id)
            )
    return people


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


async def test_panel_adherence_is_the_summarys_over_the_same_7_days(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """A regimen changed mid-window, days missed, more doses than slots, a skipped dose and one entered in
    error, in four zones. Slot times lie 3 hours either side of now, so which of today's have come does not
    change while the test runs."""
    admin = world["admin_a"].headers
    people = await _patients(app, world)
    now = datetime.now(UTC)
    for n, (person, zone) in enumerate(zip(people, ZONES, strict=True)):
        local_now = now.astimezone(ZoneInfo(zone))
        today = local_now.date()
        early, late = _hhmm(local_now - timedelta(hours=3)), _hhmm(local_now + timedelta(hours=3))
        for start, times in (
            (today - timedelta(days=20), [early]),
            (today - timedelta(days=3), [early, late]),
        ):
            response = await client.post(
                f"/v1/patients/{person.patient_id}/regimens",
                headers=admin,
                json={
                    "schedule": [{"time": t, "dose_mg": 300} for t in times],
                    "start_date": start.isoformat(),
                },
            )
            assert response.status_code == 201, response.text
        for back in range(7):
            day = today - timedelta(days=back)
            first = datetime.combine(day, time(0, 5), tzinfo=ZoneInfo(zone)).astimezone(UTC)
            for k in range((n + back) % 4):  # 0 to 3 doses a day
                taken_at = min(first + timedelta(minutes=10 * k), now - timedelta(minutes=k + 1))
                dose = await post(client, person, "doses", {"taken_at": taken_at.isoformat(), "dose_mg": 300})
                if (n, back, k) == (1, 2, 0):
                    deleted = await client.delete(
                        f"/v1/patients/me/doses/{dose['id']}", headers=person.headers
                    )
                    assert deleted.status_code == 204
            if back == 4:
                skipped = {"taken_at": first.isoformat(), "dose_mg": 300, "status": "skipped"}
                await post(client, person, "doses", skipped)

    panel = (await client.get("/v1/panel?limit=500", headers=admin)).json()["items"]
    in_panel = {row["patient_id"]: row["adherence_7d"] for row in panel}
    found = []
    for person, zone in zip(people, ZONES, strict=True):
        today = now.astimezone(ZoneInfo(zone)).date()
        window = f"from={(today - timedelta(days=6)).isoformat()}&to={today.isoformat()}"
        summary = await client.get(f"/v1/patients/{person.patient_id}/summary?{window}", headers=admin)
        assert summary.status_code == 200, summary.text
        found.append(summary.json()["adherence"]["percent"])
        assert in_panel[str(person.patient_id)] == found[-1], zone
    assert all(percent is not None for percent in found) and len(set(found)) > 1, found
    # Patients with no regimen: nothing scheduled, in both.
    assert in_panel[str(world["patient_a"].patient_id)] is None


def _clock_changes(zone: ZoneInfo, year: int) -> list[date]:
    """The days whose UTC offset differs from the day before's (at noon)."""
    day, changes = date(year, 1, 1), []
    while day.year == year:
        noon = datetime.combine(day, time(12), tzinfo=zone).utcoffset()
        before = datetime.combine(day - timedelta(days=1), time(12), tzinfo=zone).utcoffset()
        if noon != before:
            changes.append(day)
        day += timedelta(days=1)
    return changes


# New York and London at 02:00/01:00, Lord Howe by 30 minutes, Santiago at midnight, Kolkata never.
@pytest.mark.parametrize(
    "name", ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
)
def test_the_clock_counts_the_slots_whose_instant_has_come(name: str) -> None:
    zone = ZoneInfo(name)
    times = sorted({time(h, m) for h in range(24) for m in (0, 30)} | {time(2, 15), time(23, 59), time(0, 0)})
    around = _clock_changes(zone, 2026) or [date(2026, 3, 8)]
    assert name == "Asia/Kolkata" or len(around) == 2
    for change in around:
        start = datetime.combine(change - timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        for step in range(0, 3 * 24 * 60, 20):
            now = start + timedelta(minutes=step)
            clock = Clock(name, now)
            for back in range(-2, 3):
                day = clock.today - timedelta(days=back)
                if abs(back) <= 1:
                    expected = sum(1 for t in times if local_instant(day, t, name) <= now)
                else:  # well before today every slot has come, well after none
                    expected = len(times) if back > 0 else 0
                assert clock.due(day, times) == expected, (now, day)


@pytest.mark.parametrize(
    "name", ["America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
)
def test_the_clocks_slot_instants_are_the_zone_aware_ones_every_day_of_a_year(name: str) -> None:
    times = [time(0, 0), time(0, 30), time(1, 30), time(2, 15), time(3, 0), time(12, 0), time(23, 30)]
    clock = Clock(name, datetime(2026, 6, 1, tzinfo=UTC))
    day = date(2026, 1, 1)
    while day.year == 2026:
        exact = [micros(local_instant(day, t, name)) for t in times]
        assert clock.slot_micros(day, times) == exact, day
        day += timedelta(days=1)
