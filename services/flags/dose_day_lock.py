"""One local day's doses, counted together (CLINICAL.md 4: the rules that read a day's total see every dose
of that day, including doses recorded concurrently).

Every write path that adds taken doses (a dose alone, a check-in's doses, /v1/sync) calls
`lock_dose_days` BEFORE it reads the day's doses. On PostgreSQL that is a transaction-scoped advisory
lock per (patient, local day): a second request for the same day waits until the first commits, and
its read (a later statement, so a later snapshot under READ COMMITTED) then sees the first one's dose.
The lock is its own statement on purpose: a statement's snapshot is taken when it starts, so a lock
taken inside the statement that reads the day would come too late for that read.

A request that touches several days (a sync batch) takes them all at once, in ascending key order, so
two requests never wait on each other in a circle. A key already held by this transaction is not asked
again (a sync batch locks its days first; its entries' rows then find them held).

On SQLite every write transaction begins with BEGIN IMMEDIATE (services/database.py): writers are
already serialized by the database, so there is nothing to take here.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

# session.info: (the transaction the keys were taken in, the keys).
_HELD = "dose_day_locks"

# One statement for any number of keys: unnest yields the sorted array in order, and the aggregate
# takes each lock as its row arrives.
_LOCK = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(:keys) AS k").bindparams(
    bindparam("keys", type_=ARRAY(BigInteger))
)


def lock_key(patient_id: uuid.UUID, day: date) -> int:
    """A signed 64-bit key for (patient, local day). Distinct days of one patient and one day of distinct
    patients get distinct keys but for a hash collision, which costs only a needless wait, never a missed
    dose. `person` keeps these keys apart from any other use of advisory locks."""
    digest = hashlib.blake2b(
        patient_id.bytes + day.isoformat().encode(), digest_size=8, person=b"dose-day"
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _held(session: AsyncSession) -> set[int]:
    """The keys this transaction holds (an xact lock ends with its transaction: a new one holds none)."""
    current = session.sync_session.get_transaction()
    held: tuple[Any, set[int]] | None = session.info.get(_HELD)
    if current is None or held is None or held[0] is not current:
        return set()
    return held[1]


async def lock_dose_days(session: AsyncSession, days: Iterable[tuple[uuid.UUID, date]]) -> None:
    """Waits for, then holds until this transaction ends, the lock of every (patient id, local day)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    held = _held(session)
    keys = sorted({lock_key(patient_id, day) for patient_id, day in days} - held)
    if not keys:
        return
    await session.execute(_LOCK, {"keys": keys})
    session.info[_HELD] = (session.sync_session.get_transaction(), held | set(keys))
