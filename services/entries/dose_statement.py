"""A dose recorded alone, on PostgreSQL, in one statement: BEGIN, the day's lock, this, COMMIT.

The lock (services/flags/dose_day_lock.py, taken by `kinds._dose_row`) cannot be part of this
statement: its snapshot is taken when it starts, before a lock inside it would be granted, so a dose of
the same day committed while it waited would be missing from the day's total.

Data-modifying CTEs let one statement do what the recorder otherwise asks in three:

- `in_force`: the regimen in force on the dose's local day (its default medication; for the dose rules
  its maximum, its schedule (the daily total) and whether it overrode the label maximum);
- `inserted`: `INSERT ... ON CONFLICT (id) DO NOTHING RETURNING`, with the medication filled from
  `in_force` when the phone left it out;
- `audited`: the request's audit row (`audit.defer`), when one is waiting to be written;

and the select after them reads the doses already taken that local day. Every part sees the snapshot
the statement started with, so that day's list never holds the new dose: the rules add it, as they do
after `flag_history.read_dose_day` on SQLite, which runs the same reads as separate statements.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, bindparam, func, literal, literal_column, null, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import AuditEvent
from models.entries import Dose
from services.accounts import audit
from services.entries.recorder import Context
from services.entries.rows import EntryRow
from services.entries.store import table_of, values_of
from services.flags.flag_history import day_doses, no_override, no_schedule, remember_dose_day
from services.prescribing.regimens import DEFAULT_MEDICATION, in_force_on

_DOSE = table_of(Dose)
_AUDIT = table_of(AuditEvent)


def _statement(with_audit: bool) -> Any:
    in_force = in_force_on(bindparam("patient_id"), bindparam("local_date")).cte("in_force")
    filled: dict[str, Any] = {
        column.name: bindparam(column.name, type_=column.type)
        for column in _DOSE.columns
        if column.name != "medication"
    }
    filled["medication"] = func.coalesce(
        bindparam("medication", type_=_DOSE.c.medication.type),
        select(in_force.c.medication).scalar_subquery(),
        literal(DEFAULT_MEDICATION),
    )
    names = [column.name for column in _DOSE.columns]
    inserted = (
        pg_insert(_DOSE)
        .from_select(names, select(*[filled[name].label(name) for name in names]))
        .on_conflict_do_nothing(index_elements=[_DOSE.c.id])
        .returning(_DOSE.c.id, _DOSE.c.medication)
        .cte("inserted")
    )
    parts = union_all(
        select(
            literal_column("'inserted'", String).label("part"),
            inserted.c.id.label("id"),
            null().label("mg"),
            inserted.c.medication.label("medication"),
            no_schedule().label("schedule"),
            no_override().label("override_reason"),
        ),
        select(
            literal_column("'regimen'", String),
            in_force.c.id,
            in_force.c.max_daily_mg,
            in_force.c.medication,
            in_force.c.schedule,
            in_force.c.override_reason,
        ),
        day_doses(),
    )
    if not with_audit:
        return parts
    audited = (
        _AUDIT.insert()
        .values({c.name: bindparam(f"audit_{c.name}", type_=c.type) for c in _AUDIT.columns})
        .cte("audited")
    )
    return parts.add_cte(audited)


# Built once (ENGINEERING.md: building a statement costs more than running it).
_WITH_AUDIT = _statement(with_audit=True)
_WITHOUT_AUDIT = _statement(with_audit=False)


def applies(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def insert_dose(ctx: Context, row: EntryRow) -> bool:
    """Inserts the dose unless its id is taken; True when it was inserted. Either way the regimen of its
    day and the doses taken that day before it are known to `ctx` afterwards, as the rules need them."""
    params = values_of(row) | {"day": row.local_date}
    pending = audit.take_one_deferred(ctx.session)
    statement = _WITHOUT_AUDIT  # none, or more than one statement can carry: written later
    if pending is not None:
        params.update({f"audit_{name}": value for name, value in pending.items()})
        statement = _WITH_AUDIT
    parts = list(await ctx.session.execute(statement, params))
    inserted = next((part for part in parts if part.part == "inserted"), None)
    if inserted is not None:
        row.medication = inserted.medication
    remember_dose_day(parts, ctx.patient.id, row.local_date, ctx.regimens, ctx.taken_before)
    return inserted is not None
