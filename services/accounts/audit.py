"""Writing the audit trail: who did what to which patient's data, when, and how it ended."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from models.audit import AuditEvent
from models.base import utcnow
from services.accounts.access import Caller

# Core, built once: an ORM insert of a panel's 500 rows cost a quarter of the panel's time.
_INSERT = insert(AuditEvent.__table__)  # type: ignore[attr-defined]


def _rows(
    caller: Caller | None,
    action: str,
    patient_ids: Iterable[uuid.UUID | None],
    outcome: str,
    status_code: int | None,
) -> list[dict[str, object]]:
    now = utcnow()
    return [
        {
            "id": uuid.uuid4(),
            "occurred_at": now,
            "actor_user_id": caller.user_id if caller else None,
            "actor_role": caller.role.value if caller else None,
            "organization_id": caller.organization_id if caller else None,
            "patient_id": patient_id,
            "target_user_id": None,
            "action": action,
            "outcome": outcome,
            "status_code": status_code,
        }
        for patient_id in patient_ids
    ]


async def record(
    session: AsyncSession,
    caller: Caller | None,
    action: str,
    patient_ids: Iterable[uuid.UUID | None],
    *,
    outcome: str = "success",
    status_code: int | None = None,
) -> None:
    """In the request's own transaction: the record commits with the data it speaks of, or not at all."""
    rows = _rows(caller, action, patient_ids, outcome, status_code)
    if rows:
        await session.execute(_INSERT, rows)


async def record_account_action(
    session: AsyncSession,
    caller: Caller,
    action: str,
    target_user_id: uuid.UUID,
    patient_id: uuid.UUID | None,
) -> None:
    """An admin's action on an account (deactivate, reactivate), in the request's own transaction:
    whose account, and for a patient their patient id too, so it shows in their trail."""
    rows = _rows(caller, action, [patient_id], "success", None)
    await session.execute(_INSERT, [{**row, "target_user_id": target_user_id} for row in rows])


# The success row of this request's access, waiting for a statement to carry it (see `defer`).
_DEFERRED = "audit_deferred"


def defer(
    session: AsyncSession, caller: Caller | None, action: str, patient_ids: Iterable[uuid.UUID | None]
) -> None:
    """The record of a request that is expected to succeed. A write's is written by `write_deferred` in
    the request's transaction (unless a statement of the request took it first, `take_deferred`, to
    save a round trip), so it commits with the request's writes or not at all. A read's is taken when
    the route returns and written in a transaction of its own (api/read_audit.py), so the read's own
    transaction writes nothing. Whatever is still waiting when the session commits is written in that
    transaction: a record is never dropped (a service called outside a request, by a script)."""
    pending = session.info.get(_DEFERRED)
    if pending is None:
        pending = session.info[_DEFERRED] = []
        event.listen(session.sync_session, "before_commit", _write_left_behind, once=True)
    pending.extend(_rows(caller, action, patient_ids, "success", None))


def _write_left_behind(sync_session: Session) -> None:
    if rows := sync_session.info.pop(_DEFERRED, None):
        sync_session.execute(_INSERT, rows)


def take_one_deferred(session: AsyncSession) -> dict[str, object] | None:
    """The deferred row when there is exactly one (a statement carries one), now the caller's to write."""
    pending: list[dict[str, object]] = session.info.get(_DEFERRED, [])
    return session.info.pop(_DEFERRED)[0] if len(pending) == 1 else None


def take_deferred(session: AsyncSession) -> list[dict[str, object]]:
    """The deferred rows, now the caller's to write (in this transaction)."""
    rows: list[dict[str, object]] = session.info.pop(_DEFERRED, [])
    return rows


async def write_deferred(session: AsyncSession) -> None:
    if rows := take_deferred(session):
        await session.execute(_INSERT, rows)


async def write_apart(factory: async_sessionmaker[AsyncSession], rows: list[dict[str, object]]) -> None:
    """Rows taken from a request (`take_deferred`), written in a short transaction of their own."""
    async with factory() as session:
        await session.execute(_INSERT, rows)
        await session.commit()


async def record_apart(
    factory: async_sessionmaker[AsyncSession],
    caller: Caller | None,
    action: str,
    patient_ids: Iterable[uuid.UUID | None],
    *,
    outcome: str,
    status_code: int,
) -> None:
    """In a transaction of its own, for requests that fail: their own transaction rolls back."""
    rows = _rows(caller, action, patient_ids, outcome, status_code)
    if not rows:
        return
    async with factory() as session:
        await session.execute(_INSERT, rows)
        await session.commit()
