"""The time-based rules of CLINICAL.md section 4 (abrupt_stop, missed_check_ins) as pure functions: no
database, no worker. abrupt_stop as revised in issue 23: taper regimens too, and only while the patient
keeps recording. The periodic job and its idempotence are tested in tests/test_flag_lifecycle.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.flags import Severity
from services.clinical.rules import Finding, Ref, RegimenObs, abrupt_stop, missed_check_ins
from services.settings import Settings

ABRUPT_STOP_DAYS = Settings.model_fields["abrupt_stop_days"].default  # CLINICAL.md product default: 2
MISSED_CHECK_IN_DAYS = Settings.model_fields["missed_check_in_days"].default  # CLINICAL.md product default: 3

BASE_DAY = date(2026, 5, 4)


def day(offset: int) -> date:
    return BASE_DAY + timedelta(days=offset)


def regimen(start: int = -10, end: int | None = None, taper: bool = False) -> RegimenObs:
    return RegimenObs(uuid.uuid4(), day(start), day(end) if end is not None else None, taper)


# A patient who records something (a check-in, a score, a report) every day, unless a test says otherwise.
EVERY_DAY = range(-40, 40)


def stopped(
    today: int, regimens: list[RegimenObs], last_dose: int | None, recorded: Iterable[int] = EVERY_DAY
) -> Finding | None:
    return abrupt_stop(
        day(today),
        regimens,
        day(last_dose) if last_dose is not None else None,
        {day(n) for n in recorded},
        ABRUPT_STOP_DAYS,
    )


def missed(today: int, regimens: list[RegimenObs], last_check_in: int | None) -> Finding | None:
    return missed_check_ins(
        day(today), regimens, day(last_check_in) if last_check_in is not None else None, MISSED_CHECK_IN_DAYS
    )


def test_the_product_defaults_are_clinical_md_s() -> None:
    assert (ABRUPT_STOP_DAYS, MISSED_CHECK_IN_DAYS) == (2, 3)


# ---- abrupt_stop ------------------------------------------------------------------------------------


def test_abrupt_stop_after_2_complete_days_without_a_dose() -> None:
    on = regimen()
    # Last dose on day 0. On day 2 only day 1 had none (today is not complete yet).
    assert stopped(2, [on], last_dose=0) is None
    finding = stopped(3, [on], last_dose=0)  # days 1 and 2 had none
    assert finding is not None
    assert (finding.rule, finding.severity, finding.symptom_code) == ("abrupt_stop", Severity.high, None)
    assert finding.evidence == (Ref("regimen", on.id),)
    assert finding.episode == f"since:{day(0).isoformat()}" and finding.reason


def test_abrupt_stop_s_episode_is_the_lapse_so_later_runs_meet_the_same_flag() -> None:
    on = regimen()
    episodes = {finding.episode for today in range(3, 12) if (finding := stopped(today, [on], last_dose=0))}
    assert episodes == {f"since:{day(0).isoformat()}"}
    # A dose ends the lapse; the next one is another episode.
    assert stopped(6, [on], last_dose=5) is None
    later = stopped(8, [on], last_dose=5)
    assert later is not None and later.episode == f"since:{day(5).isoformat()}"


def test_a_dose_today_ends_the_lapse() -> None:
    assert stopped(5, [regimen()], last_dose=5) is None


def test_no_dose_ever_counts_from_the_regimen_s_start() -> None:
    on = regimen(start=-1)
    assert stopped(0, [on], last_dose=None) is None  # day -2 is before the regimen
    finding = stopped(1, [on], last_dose=None)
    assert finding is not None and finding.episode == f"since:{day(-1).isoformat()}"


@pytest.mark.parametrize("today", [3, 5, 30])
def test_abrupt_stop_on_a_taper_too(today: int) -> None:
    """CLINICAL.md 4 (revised): "a regimen (taper or not)"; a taper stopped abruptly is what label 5.6
    warns of. (It used to be skipped for tapers.)"""
    on = regimen(taper=True)
    finding = stopped(today, [on], last_dose=0)
    assert finding is not None and finding.evidence == (Ref("regimen", on.id),)
    assert "taper" in finding.reason
    assert stopped(today, [on], last_dose=None) is not None
    assert stopped(2, [on], last_dose=0) is None  # one day without a dose: below the threshold


def test_no_abrupt_stop_for_a_patient_who_recorded_nothing() -> None:
    """Stopped logging is not stopped taking: a patient who recorded nothing on the window's days gets
    missed_check_ins (after its own 3 days), not abrupt_stop. (It used to fire for them.)"""
    on = regimen()
    assert stopped(3, [on], last_dose=0, recorded=[0]) is None  # nothing on days 1 and 2
    assert stopped(3, [on], last_dose=0, recorded=[0, 3]) is None  # today is not one of those days
    assert stopped(4, [on], last_dose=0, recorded=[0]) is None
    assert missed(4, [on], last_check_in=0) is not None


@pytest.mark.parametrize("recorded", [[1], [2], [1, 2]])
def test_abrupt_stop_when_the_patient_kept_recording_on_those_days(recorded: list[int]) -> None:
    """Any entry on the window's days is recording: a check-in, a score, a report, a skipped dose."""
    assert stopped(3, [regimen()], last_dose=0, recorded=recorded) is not None


def test_a_dose_taken_on_those_days_is_no_abrupt_stop() -> None:
    assert stopped(3, [regimen()], last_dose=1) is None
    assert stopped(3, [regimen()], last_dose=2) is None
    assert stopped(3, [regimen(taper=True)], last_dose=2) is None


def test_abrupt_stop_across_a_regimen_replaced_in_the_window() -> None:
    """Doses were scheduled on both days, by the old regimen and then by the one replacing it (a taper,
    say): the evidence is the regimen in force on the window's last day."""
    old, new = regimen(start=-10, end=1), regimen(start=2, taper=True)
    finding = stopped(3, [old, new], last_dose=0)
    assert finding is not None and finding.evidence == (Ref("regimen", new.id),)


@pytest.mark.parametrize(
    ("on", "fires"),
    [
        (regimen(start=2), False),  # started on the window's second day
        (regimen(start=1), True),  # active on both days 1 and 2
        (regimen(end=1), False),  # ended on the window's first day
        (regimen(end=2), True),  # ended on the window's last day
    ],
)
def test_abrupt_stop_needs_a_regimen_active_on_every_day_of_the_window(on: RegimenObs, fires: bool) -> None:
    assert (stopped(3, [on], last_dose=0) is not None) is fires


def test_no_regimen_no_abrupt_stop() -> None:
    assert stopped(3, [], last_dose=0) is None
    assert stopped(3, [], last_dose=None) is None


# ---- missed_check_ins -------------------------------------------------------------------------------


def test_missed_check_ins_after_3_complete_days_without_one() -> None:
    on = regimen()
    assert missed(3, [on], last_check_in=0) is None  # days 1 and 2 without one
    finding = missed(4, [on], last_check_in=0)  # days 1, 2 and 3
    assert finding is not None
    assert (finding.rule, finding.severity, finding.symptom_code) == (
        "missed_check_ins",
        Severity.routine,
        None,
    )
    assert finding.evidence == (Ref("regimen", on.id),)
    assert finding.episode == f"since:{day(0).isoformat()}" and finding.reason
    later = missed(9, [on], last_check_in=0)  # the same lapse, one flag
    assert later is not None and later.episode == finding.episode


def test_missed_check_ins_with_no_regimen_raises_nothing() -> None:
    assert missed(10, [], last_check_in=0) is None
    assert missed(10, [], last_check_in=None) is None


def test_missed_check_ins_on_a_taper_still_fires() -> None:
    assert missed(4, [regimen(taper=True)], last_check_in=0) is not None


@pytest.mark.parametrize(("start", "fires"), [(2, False), (1, True)])
def test_missed_check_ins_needs_a_regimen_active_on_every_day_of_the_window(start: int, fires: bool) -> None:
    finding = missed(4, [regimen(start=start)], last_check_in=None)
    assert (finding is not None) is fires
    if finding is not None:
        assert finding.episode == f"since:{day(start).isoformat()}"


# ---- properties -------------------------------------------------------------------------------------

OFFSETS = st.integers(-20, 20)


@given(
    start=OFFSETS,
    last=st.none() | OFFSETS,
    today=OFFSETS,
    days=st.integers(1, 5),
    taper=st.booleans(),
    recorded=st.sets(OFFSETS, max_size=6),
)
@settings(max_examples=150, deadline=None)
def test_time_rules_on_one_open_ended_regimen(
    start: int, last: int | None, today: int, days: int, taper: bool, recorded: set[int]
) -> None:
    """An independent statement of both rules for one regimen with no end: the window is the `days`
    complete days before today; the regimen covers all of them; no dose (abrupt_stop) or no check-in
    (missed_check_ins) in them; abrupt_stop, taper or not, only if something was recorded in them."""
    on = regimen(start=start, taper=taper)
    covered = today - days >= start
    lapsed = last is None or last < today - days
    kept_recording = any(today - days <= n < today for n in recorded)
    expected_episode = f"since:{day(last if last is not None else start).isoformat()}"
    last_day = day(last) if last is not None else None
    for name, applies, severity in (
        ("abrupt_stop", kept_recording, Severity.high),
        ("missed_check_ins", True, Severity.routine),
    ):
        if name == "abrupt_stop":
            finding = abrupt_stop(day(today), [on], last_day, {day(n) for n in recorded}, days)
        else:
            finding = missed_check_ins(day(today), [on], last_day, days)
        assert (finding is not None) is (covered and lapsed and applies)
        if finding is not None:
            assert finding.severity == severity
            assert finding.evidence == (Ref("regimen", on.id),)
            assert finding.episode == expected_episode
