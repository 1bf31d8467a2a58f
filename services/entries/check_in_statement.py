"""A check-in recorded on PostgreSQL in one statement, as a dose is (dose_statement.py): BEGIN, its day's
lock when it brings taken doses (services/flags/dose_day_lock.py: a statement of its own, so that this
one's snapshot starts after a dose of that day committed while it waited), this, COMMIT.

Data-modifying CTEs let one statement do what the recorder otherwise asks in up to nine:

- `in_force` (with doses): the regimen in force on the check-in's day: the doses' default medication;
  for the dose rules its maximum, its schedule (the daily total) and whether it overrode the label;
- `new_check_in`: `INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id`;
- `new_dose`, `new_symptom`, `new_anxiety`: its parts, inserted only when the check-in was (a retry
  inserts nothing), each `ON CONFLICT (id) DO NOTHING RETURNING`: a part missing from what they return
  has an id another entry has (the recorder answers 409, and the transaction rolls back);
- `audited`: the request's audit row (`audit.defer`), when one is waiting to be written;

and the select after them reads what the write-time rules read around the new entries (as
flag_history.snapshot_for would, in its `RuleReads`): the doses taken on the day, the check-ins and
rashes near it, the earlier reports of the new terms, and with a GAD-7 the one before it and the
treatment baseline. Every part sees the snapshot the statement started with, which holds none of the new
rows: the rules leave the new ids out of what they read anyway, and add the new doses to the day's. The
one read that could see a new row is the treatment baseline (the new GAD-7 can be it): the statement
reads the start of the first regimen with it, and `_baseline` takes the new GAD-7 when it comes first.

The statement's shape depends on how many parts of each kind the check-in has; each shape is built
once (ENGINEERING.md: building a statement costs more than running it) and kept, a bounded few.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    Integer,
    String,
    bindparam,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import AuditEvent
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from services.accounts import audit
from services.entries.recorder import Context, part_taken
from services.entries.rows import AnxietyRow, DoseRow, EntryRow, SymptomRow
from services.entries.store import table_of, values_of
from services.errors import Conflict
from services.flags.flag_history import (
    NEARBY_CHECK_INS,
    PREVIOUS_GAD7,
    SYMPTOM_COLUMNS,
    TREATMENT_BASELINE,
    RuleReads,
    remember_dose_day,
    rule_windows,
)
from services.localtime import utc
from services.prescribing.regimens import DEFAULT_MEDICATION, first_treatment_day, in_force_on

_CHECK_IN = table_of(CheckIn)
_DOSE = table_of(Dose)
_SYMPTOM = table_of(SymptomReport)
_ANXIETY = table_of(AnxietyScore)
_AUDIT = table_of(AuditEvent)
_PARTS = (("dose", _DOSE), ("symptom", _SYMPTOM), ("anxiety", _ANXIETY))

# The columns of the answer's rows, whatever their part: each part fills its own and leaves the others
# null, typed, so the UNION is typed and its JSON and instants read back as such. Named as the readers
# of these rows read them (remember_dose_day, flag_history.symptom_obs, the GAD-7 rows).
_COLUMNS: dict[str, Any] = {
    "id": _DOSE.c.id.type,
    "local_date": _DOSE.c.local_date.type,
    "reported_at": _SYMPTOM.c.reported_at.type,
    "recorded_at": _ANXIETY.c.recorded_at.type,
    "mg": Float(),
    "medication": String(),
    "schedule": JSON(),
    "override_reason": String(),
    "code": String(),
    "grade": Integer(),
    "severity": Integer(),
    "present": Integer(),
    "check_in_id": _DOSE.c.check_in_id.type,
    "red_flags": JSON(),
    "total": Integer(),
}


def _row(part: str, **given: Any) -> Any:
    """A select of the answer's columns for one part (no FROM: the caller adds it with .select_from)."""
    return select(
        literal_column(f"'{part}'", String).label("part"),
        *[
            (given[name] if name in given else cast(null(), type_)).label(name)
            for name, type_ in _COLUMNS.items()
        ],
    )


def _part_insert(name: str, table: Any, count: int, gate: Any, fill: dict[str, Any]) -> Any:
    """`count` rows of a part's table from bind parameters `<name><n>_<column>`, inserted only when the
    check-in was, returning their ids (a dose its medication too)."""
    names = [column.name for column in table.columns]
    rows = [
        select(
            *[
                (
                    fill[column.name](f"{name}{n}_")
                    if column.name in fill
                    else bindparam(f"{name}{n}_{column.name}", type_=column.type)
                ).label(column.name)
                for column in table.columns
            ]
        )
        for n in range(count)
    ]
    values = (union_all(*rows) if count > 1 else rows[0]).subquery(f"{name}_values")
    returning = [table.c.id, table.c.medication] if name == "dose" else [table.c.id]
    return (
        pg_insert(table)
        .from_select(names, select(*[values.c[n] for n in names]).where(gate))
        .on_conflict_do_nothing(index_elements=[table.c.id])
        .returning(*returning)
        .cte(f"new_{name}")
    )


@lru_cache(maxsize=64)
def _statement(doses: int, symptoms: int, anxiety: int, gad7: bool, with_audit: bool) -> Any:
    patient_id: Any = bindparam("patient_id")
    day: Any = bindparam("day", type_=_DOSE.c.local_date.type)
    new_check_in = (
        pg_insert(_CHECK_IN)
        .values({c.name: bindparam(f"check_in_{c.name}", type_=c.type) for c in _CHECK_IN.columns})
        .on_conflict_do_nothing(index_elements=[_CHECK_IN.c.id])
        .returning(_CHECK_IN.c.id)
        .cte("new_check_in")
    )
    gate = exists(select(new_check_in.c.id))
    selects = [_row("new_check_in", id=new_check_in.c.id).select_from(new_check_in)]
    if doses:
        in_force = in_force_on(patient_id, day).cte("in_force")

        def medication(prefix: str) -> Any:
            return func.coalesce(
                bindparam(f"{prefix}medication", type_=_DOSE.c.medication.type),
                select(in_force.c.medication).scalar_subquery(),
                literal(DEFAULT_MEDICATION),
            )

        new_dose = _part_insert("dose", _DOSE, doses, gate, {"medication": medication})
        taken = (
            select(_DOSE.c.id, _DOSE.c.dose_mg, _DOSE.c.medication)
            .where(
                _DOSE.c.patient_id == patient_id,
                _DOSE.c.local_date == day,
                _DOSE.c.status == "taken",
                _DOSE.c.entered_in_error_at.is_(None),
            )
            .subquery("taken")
        )
        selects += [
            _row("new_dose", id=new_dose.c.id, medication=new_dose.c.medication).select_from(new_dose),
            _row(
                "regimen",
                id=in_force.c.id,
                mg=in_force.c.max_daily_mg,
                medication=in_force.c.medication,
                schedule=in_force.c.schedule,
                override_reason=in_force.c.override_reason,
            ).select_from(in_force),
            _row("dose", id=taken.c.id, mg=taken.c.dose_mg, medication=taken.c.medication).select_from(taken),
        ]
    for name, table, count in (("symptom", _SYMPTOM, symptoms), ("anxiety", _ANXIETY, anxiety)):
        if count:
            inserted = _part_insert(name, table, count, gate, {})
            selects.append(_row(f"new_{name}", id=inserted.c.id).select_from(inserted))
    nearby = NEARBY_CHECK_INS.subquery("nearby")
    selects.append(
        _row(
            "nearby", id=nearby.c.id, local_date=nearby.c.local_date, red_flags=nearby.c.red_flags
        ).select_from(nearby)
    )
    # The rashes near the check-in (dress) and the new reports' terms since `earliest` (worsening,
    # persistent), as snapshot_for asks them; with no report, `codes` is empty and `earliest` null.
    reports = (
        SYMPTOM_COLUMNS.where(
            _SYMPTOM.c.patient_id == patient_id,
            _SYMPTOM.c.entered_in_error_at.is_(None),
            (
                (_SYMPTOM.c.code == "rash")
                & _SYMPTOM.c.local_date.between(bindparam("rash_low"), bindparam("rash_high"))
            )
            | (
                _SYMPTOM.c.code.in_(bindparam("codes", expanding=True))
                & (_SYMPTOM.c.reported_at >= bindparam("earliest", type_=_SYMPTOM.c.reported_at.type))
            ),
        )
    ).subquery("reports")
    selects.append(
        _row(
            "symptom",
            **{
                name: reports.c[name]
                for name in (
                    "id",
                    "code",
                    "local_date",
                    "reported_at",
                    "grade",
                    "severity",
                    "present",
                    "check_in_id",
                )
            },
        ).select_from(reports)
    )
    if gad7:
        previous, baseline = PREVIOUS_GAD7.subquery("previous"), TREATMENT_BASELINE.subquery("baseline")
        for part, found in (("previous", previous), ("baseline", baseline)):
            selects.append(
                _row(part, id=found.c.id, recorded_at=found.c.recorded_at, total=found.c.total).select_from(
                    found
                )
            )
        selects.append(
            _row("first_treatment_day", local_date=first_treatment_day(patient_id).scalar_subquery())
        )
    statement = union_all(*selects)
    if with_audit:
        audited = (
            _AUDIT.insert()
            .values({c.name: bindparam(f"audit_{c.name}", type_=c.type) for c in _AUDIT.columns})
            .cte("audited")
        )
        statement = statement.add_cte(audited)
    return statement


@dataclass(frozen=True)
class _Found:
    """A GAD-7 row as snapshot_for reads it."""

    part: str
    id: uuid.UUID
    recorded_at: Any
    total: int | None


def applies(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def insert_check_in(ctx: Context, rows: list[EntryRow]) -> bool:
    """Inserts the check-in and its parts unless its id is taken; True when it was inserted (Conflict
    when a part's id is another entry's). Either way, afterwards `ctx` knows the day's regimen and the
    doses taken before (with doses), and `ctx.reads` what the rules read around the new entries."""
    check_in = rows[0]
    doses = [row for row in rows[1:] if isinstance(row, DoseRow)]
    symptoms = [row for row in rows[1:] if isinstance(row, SymptomRow)]
    scores = [row for row in rows[1:] if isinstance(row, AnxietyRow)]
    parts: dict[str, list[Any]] = {"dose": doses, "symptom": symptoms, "anxiety": scores}
    gad7s = [row for row in scores if row.instrument == "gad7"]
    windows = rule_windows(ctx.settings, [check_in], parts["symptom"])
    assert windows.nearby is not None and windows.rash is not None  # a check-in is always near itself
    params: dict[str, Any] = {
        "patient_id": ctx.patient.id,
        "day": check_in.local_date,
        "low": windows.nearby[0],
        "high": windows.nearby[1],
        "rash_low": windows.rash[0],
        "rash_high": windows.rash[1],
        "codes": sorted(windows.codes),
        "earliest": windows.earliest,
    }
    params.update({f"check_in_{name}": value for name, value in values_of(check_in).items()})
    for name, group in parts.items():
        for n, row in enumerate(group):
            params.update({f"{name}{n}_{column}": value for column, value in values_of(row).items()})
    if gad7s:
        params.update({"before": gad7s[0].recorded_at, "id": gad7s[0].id})
    pending = audit.take_one_deferred(ctx.session)
    if pending is not None:
        params.update({f"audit_{name}": value for name, value in pending.items()})
    shape = (
        len(parts["dose"]),
        len(parts["symptom"]),
        len(parts["anxiety"]),
        bool(gad7s),
        pending is not None,
    )
    found = list(await ctx.session.execute(_statement(*shape), params))
    by_part: dict[str, list[Any]] = {}
    for part in found:
        by_part.setdefault(part.part, []).append(part)
    if doses:
        remember_dose_day(found, ctx.patient.id, check_in.local_date, ctx.regimens, ctx.taken_before)
    if not by_part.get("new_check_in"):
        return False
    inserted = {
        row.id for name in ("new_dose", "new_symptom", "new_anxiety") for row in by_part.get(name, [])
    }
    if taken := {row.id for row in rows[1:] if row.id not in inserted}:
        raise Conflict(part_taken(rows[1:], taken))
    medications = {row.id: row.medication for row in by_part.get("new_dose", [])}
    for dose in doses:
        dose.medication = medications[dose.id]
    ctx.reads = RuleReads(
        nearby_check_ins=by_part.get("nearby", []),
        symptoms=by_part.get("symptom", []),
        gad7={gad7.id: _gad7_rows(gad7, by_part) for gad7 in gad7s},
    )
    return True


def _gad7_rows(gad7: Any, by_part: dict[str, list[Any]]) -> list[Any]:
    """The GAD-7 before the new one and the treatment baseline, as snapshot_for reads them after the
    insert: the new GAD-7 is the baseline when it is on or after the first regimen's start and comes
    before the stored baseline (or there is none), as `treatment_baseline` orders them."""
    found: list[Any] = list(by_part.get("previous", []))
    stored = next(iter(by_part.get("baseline", [])), None)
    first = next(iter(by_part.get("first_treatment_day", [])), None)
    baseline = stored
    treated = first is not None and first.local_date is not None and gad7.local_date >= first.local_date
    earlier = stored is None or (utc(gad7.recorded_at), gad7.id) < (utc(stored.recorded_at), stored.id)
    if treated and earlier:
        baseline = _Found("baseline", gad7.id, gad7.recorded_at, gad7.total)
    if baseline is not None:
        found.append(baseline)
    return found
