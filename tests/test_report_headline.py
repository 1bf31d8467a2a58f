"""The report's headline and the numbers issue 24 fixed, read off the parsed page for a hand-worked
28-day patient, with the summary and the panel agreeing.

The patient lives in a zone where it is now between 03:00 and 19:00 (picked at run time), so "now"
falls inside a slot's 60-minute window without touching midnight. T is the patient's today; S is the
wall-clock time 27 minutes ago (a whole minute).
- Regimen from T-28: S and 22:00, 300 mg each (29 days on a regimen: T-28 to T).
- T-2: S taken at S+5 (on time); the 22:00 dose taken at 00:30 of T-1, tagged `scheduled_for` T-2 22:00:
  it counts for T-2's evening (taken, late), not as an extra on T-1.
- T-1: S taken at S (on time), 22:00 taken at 22:10 (on time).
- T: the S slot is 27 minutes old, inside its window: neither due nor missed; 22:00 has not come.
Adherence: 28 past days x 2 = 56 due, 4 taken (7.1 %), 3 on time (5.4 %); missed 52 on 26 days
(T-28 to T-3), late 1. Check-ins on T-3, T-2, T-1: 3 of 29 regimen days = 10.3 %.
GAD-7: 10 on T-27 (the treatment baseline), 16 on T-13 (anxiety_severe, high, observed T-13 12:00), 17
on T-1. From the baseline: +7, a reliable worsening; over the last 14 days alone the window says 16 -> 17,
+1, while the baseline still says +7. Ratings on T-4, T-3 and T-1: the line joins T-4 to T-3 only.
The panel's 7 days (T-6 to T): 12 due, 4 taken = 33.3 %, as the summary of those days.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI

from models.accounts import Role
from models.base import utcnow
from services.accounts import users as accounts
from services.accounts.auth import start_session
from services.database import session_scope
from tests.flag_helpers import post
from tests.test_report import parse
from tests.world import Person, World

ZONES = ("Pacific/Honolulu", "America/New_York", "Europe/London", "Asia/Kolkata", "Asia/Tokyo")


def _zone(now: datetime) -> str:
    """A zone where the local time now is between 03:00 and 19:00 (the zones are at most 6 hours apart)."""
    for name in ZONES:
        if 3 <= now.astimezone(ZoneInfo(name)).hour < 19:
            return name
    raise AssertionError("no zone in daytime")  # pragma: no cover


async def _patient(app: FastAPI, world: World, zone: str) -> Person:
    async with session_scope(app.state.session_factory) as session:
        record = await accounts.create_patient(
            session,
            organization_id=world.organizations["A"],
            email="headline@a.example",
            name="Headline Patient",
            timezone=zone,
        )
        pair = await start_session(session, app.state.settings, record.user_id, utcnow())
    return Person("Headline Patient", record.user_id, Role.patient, pair.access_token, "", record.id)


async def test_the_headline_and_the_fixed_numbers_on_the_page(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    now = datetime.now(UTC)
    name = _zone(now)
    zone = ZoneInfo(name)
    local_now = now.astimezone(zone)
    today = local_now.date()
    slot = (local_now - timedelta(minutes=27)).replace(second=0, microsecond=0)
    s_time = slot.time()
    s_text = slot.strftime("%H:%M")
    person = await _patient(app, world, name)
    admin = world["admin_a"].headers
    path = f"/v1/patients/{person.patient_id}"

    def t(back: int) -> date:
        return today - timedelta(days=back)

    def local(day: date, wall: time, minutes: int = 0) -> str:
        return (datetime.combine(day, wall, tzinfo=zone) + timedelta(minutes=minutes)).isoformat()

    regimen = {
        "schedule": [{"time": s_text, "dose_mg": 300}, {"time": "22:00", "dose_mg": 300}],
        "start_date": t(28).isoformat(),
    }
    if s_text > "22:00":  # pragma: no cover - the zone keeps S before 19:00
        raise AssertionError(s_text)
    response = await client.post(f"{path}/regimens", headers=admin, json=regimen)
    assert response.status_code == 201, response.text

    async def dose(taken_at: str, scheduled_for: str | None = None) -> None:
        body: dict[str, object] = {"taken_at": taken_at, "dose_mg": 300}
        if scheduled_for:
            body["scheduled_for"] = scheduled_for
        await post(client, person, "doses", body)

    await dose(local(t(2), s_time, 5))
    await dose(local(t(1), time(0, 30)), scheduled_for=local(t(2), time(22, 0)))  # late, for T-2's evening
    await dose(local(t(1), s_time))
    await dose(local(t(1), time(22, 10)))
    for back in (3, 2, 1):
        await post(
            client,
            person,
            "check-ins",
            {"date": t(back).isoformat(), "submitted_at": local(t(back), time(21, 0))},
        )
    for back, total in ((27, 10), (13, 16), (1, 17)):
        items = [3] * (total // 3) + ([total % 3] if total % 3 else [])
        items += [0] * (7 - len(items))
        await post(
            client,
            person,
            "anxiety",
            {"recorded_at": local(t(back), time(12, 0)), "instrument": "gad7", "items": items},
        )
    for back, score in ((4, 5), (3, 6), (1, 7)):
        await post(
            client,
            person,
            "anxiety",
            {"recorded_at": local(t(back), time(20, 0)), "instrument": "rating", "score": score},
        )

    response = await client.get(f"{path}/report", headers=admin)
    assert response.status_code == 200, response.text
    page = parse(response.text)
    summary = (
        await client.get(f"{path}/summary?from={t(28).isoformat()}&to={today.isoformat()}", headers=admin)
    ).json()

    # The default window starts at the first regimen, not 90 days back: 29 days.
    assert page.text("window") == f"{t(28).isoformat()} to {today.isoformat()}"
    # Adherence follows the schedule: the tagged 00:30 dose counts for T-2's evening; today's S slot is
    # inside its window (neither due nor missed).
    assert summary["adherence"] == {"scheduled": 56, "taken": 4, "percent": 7.1, "on_time_percent": 5.4}
    assert page.text("adherence-percent") == "7.1" and page.text("on-time-percent") == "5.4"
    assert (page.text("adherence-taken"), page.text("adherence-scheduled")) == ("4", "56")
    assert (page.text("missed"), page.text("missed-days"), page.text("late")) == ("52", "26", "1")
    assert "1 day" in page.text("dose-slots-desc") and "1 days" not in response.text
    # Check-ins over the 29 days on a regimen, not the window's (or 90) days.
    assert summary["check_ins"] == {"days": 3, "percent": 10.3, "regimen_days": 29}
    assert (page.text("check-in-days"), page.text("check-in-percent")) == ("3", "10.3")
    assert page.text("check-in-over") == "29"

    # The headline, first on the page: the open high flag with its reason and observed_at, today's
    # regimen, the change from the treatment baseline, adherence over the regimen days.
    html = response.text
    assert html.index('id="headline"') < html.index('id="chart-doses"') < html.index('id="adherence"')
    flags = page.text("headline-flags")
    assert "HIGH anxiety severe, not acknowledged" in flags, flags
    assert f"observed {t(13).isoformat()} 12:00" in flags
    assert "GAD-7 rose by 7 points since the start of treatment (10 to 17)." in flags  # its reason
    assert page.text("headline-unacknowledged") == "1"
    assert page.text("headline-schedule") == f"{s_text} 300 mg, 22:00 300 mg"
    assert "600 mg a day" in page.text("headline-regimen")
    assert (page.text("baseline-value"), page.text("baseline-last"), page.text("baseline-change")) == (
        "10",
        "17",
        "+7",
    )
    assert page.text("baseline-meaning").startswith("reliable worsening")
    assert t(27).isoformat() in page.text("headline-gad7")
    assert page.text("headline-adherence-percent") == "7.1"
    assert page.text("headline-on-time-percent") == "5.4"
    assert page.text("headline-regimen-days") == "29"
    # The summary's baseline: the same numbers.
    assert summary["gad7"]["baseline"] == {"value": 10, "date": t(27).isoformat()}
    assert summary["gad7"]["change_from_baseline"]["points"] == 7
    assert summary["gad7"]["change_from_baseline"]["meaning"].startswith("reliable worsening")

    # The patient's facts as recorded or "not recorded"; no label maximum without a clearance.
    assert page.text("fact-birth-year") == "not recorded"
    assert page.text("fact-opioids-benzodiazepines") == "no"
    assert page.text("fact-creatinine-clearance") == "not recorded"
    assert "label-max" not in page.by_id and "Label maximum" not in html

    # Gaps are gaps: the rating line joins T-4 to T-3 and leaves T-1 on its own.
    rating_svg = html[html.index('id="chart-rating"') : html.index('id="chart-side-effects"')]
    (trend,) = re.findall(r'<g class="series trend"><path d="([^"]+)"', rating_svg)
    assert (trend.count("M"), trend.count("L")) == (2, 1), trend
    # The flag chart places the flag on the day of its evidence (observed_at).
    assert f"{t(13).isoformat()} high anxiety severe" in page.text("flags-desc")

    # The last 14 days alone: the window says 16 -> 17 (+1); the baseline still says +7.
    recent = f"from={t(13).isoformat()}&to={today.isoformat()}"
    window = (await client.get(f"{path}/summary?{recent}", headers=admin)).json()["gad7"]
    assert (window["first"], window["last"], window["change"]) == (16, 17, 1)
    assert window["change_from_baseline"]["points"] == 7
    recent_page = parse((await client.get(f"{path}/report?{recent}", headers=admin)).text)
    assert page.text("gad7-change") == "+7"  # the default window: 10 -> 17
    assert recent_page.text("gad7-change") == "+1" and recent_page.text("baseline-change") == "+7"

    # The panel's 7 days agree with the summary's over the same days (the tagged dose included).
    week = f"from={t(6).isoformat()}&to={today.isoformat()}"
    seven = (await client.get(f"{path}/summary?{week}", headers=admin)).json()["adherence"]
    assert (seven["scheduled"], seven["taken"], seven["percent"]) == (12, 4, 33.3)
    panel = (await client.get("/v1/panel?limit=500", headers=admin)).json()["items"]
    (row,) = [r for r in panel if r["patient_id"] == str(person.patient_id)]
    assert row["adherence_7d"] == 33.3


def test_a_long_source_list_collapses_to_a_count_and_the_first_few() -> None:
    from services.reports.report_data import FlagSource
    from services.reports.report_page import plural, sources

    day = date(2026, 3, 1)
    many = tuple(FlagSource("dose", day + timedelta(days=n), retracted=n == 1) for n in range(47))
    assert sources(many) == (
        "47 sources: dose of 2026-03-01; dose of 2026-03-02 (entered in error); dose of 2026-03-03; "
        "and 44 more"
    )
    assert sources(many[:4]).count("dose of") == 4  # a few are all listed
    assert (plural(1, "day"), plural(0, "day"), plural(2, "dose")) == ("day", "days", "doses")


def test_a_dose_tagged_for_a_slot_is_on_time_only_for_that_slot() -> None:
    """Slots 08:00 and 14:00 (New York, a past day). A dose taken at 13:30 tagged for 08:00 is that
    morning's dose, 5.5 hours late: it does not make the 14:00 slot on time, as an untagged 13:30 dose
    would. One of two slots taken either way."""
    from services.reports.summaries import Schedule, daily_adherence

    zone = "America/New_York"
    day = date(2026, 5, 4)
    schedule = Schedule(day, None, (time(8, 0), time(14, 0)))

    def moment(hour: int, minute: int) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)

    now = datetime(2026, 5, 10, tzinfo=UTC)
    doses, counts = {day: [moment(13, 30)]}, {day: (1, 300.0)}

    def counted(tags: list[datetime | None] | None) -> list[tuple[int, int, int]]:
        found = daily_adherence([schedule], [day], zone, now, counts, doses, {day: tags} if tags else None)
        return [(d.due, d.taken, d.on_time) for d in found]

    assert counted(None) == [(2, 1, 1)]  # untagged: 30 minutes from 14:00, on time
    assert counted([None]) == [(2, 1, 1)]
    assert counted([moment(8, 0)]) == [(2, 1, 0)]  # the 08:00 dose, late
    assert counted([moment(14, 0)]) == [(2, 1, 1)]  # the 14:00 dose, on time
