"""The requests each scenario sends, written as wrk plans.

Write scenarios put each request on its own (patient, local day) slot, on days no other scenario
writes to, so a run adds at most one entry of each kind to a day: the daily dose total stays within
the prescription (the check-in's and the sync's days hold no history doses: DOSES_SENT_LATER) and the
write-time rules find nothing to flag, as for a normal entry. A run that needed more slots than its
plan has is reported ("wrapped").
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from bench import wrk
from bench.population import DOSE_MG, BenchPatient, Population
from services.clinical.catalog import RED_FLAGS

ALL_NO = {code: 0 if q.scale == "0-3" else False for code, q in RED_FLAGS.items()}
ID = "{{id}}"


@dataclass(frozen=True)
class Days:
    """Local days `newest` to `oldest` days before each patient's today."""

    newest: int
    oldest: int

    def each(self) -> range:
        return range(self.newest, self.oldest + 1)


# Which days each scenario writes to (the 90-day summary reads days 0-89).
DOSE_DAYS = Days(1, 30)
CHECK_IN_DAYS = Days(31, 45)
SYNC_DAYS = Days(91, 190)
BASELINE_DAYS = Days(200, 230)
ALERT_DAY = 0
# The days `run.count_queries` sends a check-in and a sync batch to (50-51 take its doses).
PROBE_DAYS = Days(52, 55)
# The days whose doses a scenario sends with the rest of the day (the check-in brings the day's three
# doses; a phone's backlog its two): the history logs no dose there (population.build), so the day's
# total is the prescribed one. Logged twice, the day would be 100% above the prescription and every
# request would raise above_prescribed, measuring the flag's path instead of the plain one.
DOSES_SENT_LATER = (CHECK_IN_DAYS, PROBE_DAYS, SYNC_DAYS)


def _instant(patient: BenchPatient, day: date, at: time) -> str:
    return datetime.combine(day, at, tzinfo=patient.zone).astimezone(UTC).isoformat()


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def dose_body(patient: BenchPatient, day: date) -> dict[str, object]:
    """A dose as a phone sends it: the regimen's medication is left for the server to fill in."""
    return {"id": ID, "taken_at": _instant(patient, day, time(12, 30)), "dose_mg": DOSE_MG, "status": "taken"}


def check_in_body(patient: BenchPatient, day: date) -> dict[str, object]:
    """The issue's check-in: 3 doses, 2 symptoms, a rating, every red flag answered no. The doses are
    the day's schedule (3 x 300 mg on CHECK_IN_DAYS, whose history holds none: DOSES_SENT_LATER), so
    the check-in takes the plain path: no rule fires."""
    return {
        "id": ID,
        "date": day.isoformat(),
        "submitted_at": _instant(patient, day, time(21, 30)),
        "anxiety_rating": 4,
        "doses": [
            {"taken_at": _instant(patient, day, at), "dose_mg": DOSE_MG}
            for at in (time(8, 5), time(14, 5), time(20, 5))
        ],
        "symptoms": [
            {
                "reported_at": _instant(patient, day, time(21, 30)),
                "code": "dizziness",
                "severity": 1,
                "interference": 0,
            },
            {"reported_at": _instant(patient, day, time(21, 30)), "code": "dry_mouth", "severity": 1},
        ],
        "red_flags": ALL_NO,
    }


def sync_entries(patient: BenchPatient, days: list[date], count: int) -> list[dict[str, object]]:
    """A phone back online: per day two doses, a rating, a mild side effect and a check-in."""
    pid = str(patient.patient_id)
    entries: list[dict[str, object]] = []
    for day in days:
        entries += [
            {
                "type": "dose",
                "patient_id": pid,
                "id": ID,
                "taken_at": _instant(patient, day, time(8, 10)),
                "dose_mg": DOSE_MG,
            },
            {
                "type": "dose",
                "patient_id": pid,
                "id": ID,
                "taken_at": _instant(patient, day, time(20, 10)),
                "dose_mg": DOSE_MG,
            },
            {
                "type": "anxiety",
                "patient_id": pid,
                "id": ID,
                "recorded_at": _instant(patient, day, time(9, 0)),
                "instrument": "rating",
                "score": 5,
            },
            {
                "type": "symptom",
                "patient_id": pid,
                "id": ID,
                "reported_at": _instant(patient, day, time(9, 0)),
                "code": "drowsiness",
                "severity": 1,
                "interference": 1,
            },
            {
                "type": "check_in",
                "patient_id": pid,
                "id": ID,
                "date": day.isoformat(),
                "submitted_at": _instant(patient, day, time(21, 0)),
                "red_flags": ALL_NO,
            },
        ]
        if len(entries) >= count:
            break
    return entries[:count]


def urgent_check_in(patient: BenchPatient, now: datetime) -> dict[str, object]:
    """A check-in answering yes to "A seizure?": an urgent flag, and so a webhook."""
    return {
        "id": str(uuid.uuid4()),
        "date": patient.today(now).isoformat(),
        "submitted_at": now.isoformat(),
        "anxiety_rating": 8,
        "red_flags": {**ALL_NO, "seizure": True},
    }


class PlanWriter:
    """Writes plans for one population, with the tokens the bench minted for it."""

    def __init__(
        self, directory: Path, people: Population, tokens: dict[uuid.UUID, str], now: datetime
    ) -> None:
        self.directory = directory
        self.people = people
        self.tokens = tokens
        self.now = now

    def _slots(self, patients: list[BenchPatient], days: Days) -> Iterator[tuple[BenchPatient, date]]:
        # Day by day across all patients, so consecutive requests are for different patients.
        for back in days.each():
            for patient in patients:
                yield patient, patient.today(self.now) - timedelta(days=back)

    def _patient_tokens(self, patients: list[BenchPatient]) -> list[str]:
        return [self.tokens[p.user_id] for p in patients]

    def doses(self, name: str, days: Days, path_by_id: bool = False) -> wrk.Plan:
        """POST a dose per slot. Baselines take the patient id in the path (they have no `me`)."""
        patients = self.people.patients
        index = {p.patient_id: n + 1 for n, p in enumerate(patients)}
        requests = (
            wrk.PlanRequest(
                "POST",
                f"/v1/patients/{p.patient_id if path_by_id else 'me'}/doses",
                index[p.patient_id],
                _json(dose_body(p, day)),
            )
            for p, day in self._slots(patients, days)
        )
        return wrk.write_plan(self.directory, name, self._patient_tokens(patients), requests)

    def check_ins(self, days: Days) -> wrk.Plan:
        patients = self.people.patients
        index = {p.patient_id: n + 1 for n, p in enumerate(patients)}
        requests = (
            wrk.PlanRequest(
                "POST", "/v1/patients/me/check-ins", index[p.patient_id], _json(check_in_body(p, day))
            )
            for p, day in self._slots(patients, days)
        )
        return wrk.write_plan(self.directory, "check_ins", self._patient_tokens(patients), requests)

    def sync_body(self, patient: BenchPatient, entries: int) -> list[dict[str, object]]:
        """A phone's backlog over SYNC_DAYS, as sync entries (with "{{id}}" placeholders)."""
        today = patient.today(self.now)
        return sync_entries(patient, [today - timedelta(days=back) for back in SYNC_DAYS.each()], entries)

    def summaries(self, name: str, window_days: int = 90, resource: str = "summary") -> wrk.Plan:
        """Each patient's summary (or, with resource="report", the printable report) over the last
        `window_days` local days, asked by their provider."""
        provider_tokens = [self.tokens[p.user_id] for p in self.people.providers]
        requests = []
        for p in self.people.patients:
            today = p.today(self.now)
            start = today - timedelta(days=window_days - 1)
            path = f"/v1/patients/{p.patient_id}/{resource}?from={start.isoformat()}&to={today.isoformat()}"
            requests.append(wrk.PlanRequest("GET", path, p.provider_index + 1))
        return wrk.write_plan(self.directory, name, provider_tokens, requests)

    def gets(self, name: str, path: str, *, signed_in: bool = True) -> wrk.Plan:
        """The same GET for every patient, with their token (or none)."""
        patients = self.people.patients
        requests = [wrk.PlanRequest("GET", path, n + 1 if signed_in else 0) for n in range(len(patients))]
        return wrk.write_plan(self.directory, name, self._patient_tokens(patients), requests)

    def panel(self, limit: int) -> wrk.Plan:
        """The first page of the first provider's panel, `limit` patients (500: all of theirs)."""
        provider = self.people.providers[0]
        request = wrk.PlanRequest("GET", f"/v1/panel?limit={limit}", 1)
        return wrk.write_plan(self.directory, f"panel_{limit}", [self.tokens[provider.user_id]], [request])
