"""Flags: raising them from rule findings, their lifecycle, and the provider triage queue.

One flag that is not resolved per patient, rule and symptom: new evidence attaches to it and a higher
severity escalates it (a unique index makes this hold under concurrency too). Every flag created or
escalated writes an outbox event in the same transaction, for the webhook worker to deliver.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient, Role
from models.base import utcnow
from models.common import Page
from models.flags import (
    AcknowledgeRequest,
    EvidencePublic,
    Flag,
    FlagPublic,
    FlagStatus,
    ResolveRequest,
    Severity,
)
from services.accounts import audit
from services.accounts.access import Caller, readable_patient_ids, require_role
from services.alerting import outbox
from services.clinical.rules import ADVICE, Finding, write_time_rules
from services.errors import Conflict, FieldError, NotFound, ValidationFailed
from services.flags.flag_history import TakenBefore, snapshot_for
from services.localtime import utc
from services.pagination import b64_json_decode, b64_json_encode
from services.prescribing.regimens import RegimensInForce
from services.settings import Settings

ACTIVE = (FlagStatus.open.value, FlagStatus.acknowledged.value)


def to_public(flag: Flag) -> FlagPublic:
    return FlagPublic(
        id=flag.id,
        patient_id=flag.patient_id,
        rule=flag.rule,
        severity=Severity(flag.severity),
        status=FlagStatus(flag.status),
        reason=flag.reason,
        symptom_code=flag.symptom_code,
        evidence=[EvidencePublic(**item) for item in flag.evidence],
        created_at=utc(flag.created_at),
        updated_at=utc(flag.updated_at),
        acknowledged_at=utc(flag.acknowledged_at),
        acknowledged_by=flag.acknowledged_by,
        resolved_at=utc(flag.resolved_at),
        resolved_by=flag.resolved_by,
        note=flag.note,
    )


def advice_for(flags: list[FlagPublic]) -> str | None:
    """CLINICAL.md 5: the advice of the highest severity among the flags, or None."""
    if not flags:
        return None
    return ADVICE[max((f.severity for f in flags), key=lambda s: s.rank)]


# ---- raising ---------------------------------------------------------------------------------------


async def evaluate_new_entries(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    new_rows: list[Any],
    regimens: RegimensInForce | None = None,
    taken_before: TakenBefore | None = None,
) -> list[FlagPublic]:
    """Run the write-time rules over entries just recorded (same transaction). Returns the flags they
    raised, escalated or added evidence to; the flags are read only for what a rule found."""
    snapshot = await snapshot_for(session, settings, patient, new_rows, regimens, taken_before)
    rules = write_time_rules(
        settings.persistent_symptom_min_days,
        settings.persistent_symptom_window_days,
        settings.persistent_symptom_min_grade,
    )
    findings = [finding for rule in rules for finding in rule(snapshot)]
    touched: dict[uuid.UUID, Flag] = {}
    for finding in findings:
        flag = await apply_finding(session, patient, finding)
        if flag is not None:
            touched[flag.id] = flag
    return [to_public(flag) for flag in touched.values()]


async def _active_flag(
    session: AsyncSession, patient_id: uuid.UUID, rule: str, symptom_key: str
) -> Flag | None:
    statement = (
        select(Flag)
        .where(
            col(Flag.patient_id) == patient_id,
            col(Flag.rule) == rule,
            col(Flag.symptom_key) == symptom_key,
            col(Flag.status).in_(ACTIVE),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalars().first()


async def apply_finding(session: AsyncSession, patient: Patient, finding: Finding) -> Flag | None:
    """Create the flag, or attach the evidence to the one already active (escalating it when the
    finding is more severe). None when a time-based lapse was already flagged and resolved."""
    symptom_key = finding.symptom_code or ""
    now = utcnow()
    if finding.episode is not None and await _episode_seen(session, patient.id, finding):
        return None
    for _attempt in range(3):
        existing = await _active_flag(session, patient.id, finding.rule, symptom_key)
        if existing is not None:
            return await _attach(session, patient, existing, finding, now)
        flag = Flag(
            patient_id=patient.id,
            organization_id=patient.organization_id,
            rule=finding.rule,
            severity=finding.severity.value,
            severity_rank=finding.severity.rank,
            reason=finding.reason,
            symptom_code=finding.symptom_code,
            symptom_key=symptom_key,
            episode=finding.episode,
            evidence=[{"type": ref.type, "id": str(ref.id), "retracted": False} for ref in finding.evidence],
            created_at=now,
            updated_at=now,
        )
        savepoint = await session.begin_nested()
        try:
            session.add(flag)
            await session.flush()
        except IntegrityError:
            # A concurrent request raised the same flag first: attach to theirs instead.
            await savepoint.rollback()
            if flag in session:
                session.expunge(flag)
            continue
        await savepoint.commit()
        await outbox.flag_event(session, "flag.created", patient, to_public(flag))
        return flag
    raise Conflict("The flag changed concurrently too many times; retry the request.")


async def _episode_seen(session: AsyncSession, patient_id: uuid.UUID, finding: Finding) -> bool:
    seen = await session.scalar(
        select(col(Flag.id)).where(
            col(Flag.patient_id) == patient_id,
            col(Flag.rule) == finding.rule,
            col(Flag.episode) == finding.episode,
        )
    )
    return seen is not None


async def _attach(session: AsyncSession, patient: Patient, flag: Flag, finding: Finding, now: Any) -> Flag:
    known = {(item["type"], item["id"]) for item in flag.evidence}
    added = [
        {"type": ref.type, "id": str(ref.id), "retracted": False}
        for ref in finding.evidence
        if (ref.type, str(ref.id)) not in known
    ]
    escalated = finding.severity.rank > flag.severity_rank
    if not added and not escalated:
        return flag
    flag.evidence = [*flag.evidence, *added]
    flag.updated_at = now
    if escalated:
        flag.severity = finding.severity.value
        flag.severity_rank = finding.severity.rank
        flag.reason = finding.reason
        # A more severe finding needs fresh attention, even if the flag had been acknowledged.
        flag.status = FlagStatus.open.value
    session.add(flag)
    await session.flush()
    if escalated:
        await outbox.flag_event(session, "flag.escalated", patient, to_public(flag))
    return flag


async def retract_evidence(session: AsyncSession, patient_id: uuid.UUID, entry_ids: set[uuid.UUID]) -> None:
    """Entries marked entered-in-error stay on their flags, marked retracted, for a clinician to judge."""
    wanted = {str(i) for i in entry_ids}
    rows = await session.execute(select(Flag).where(col(Flag.patient_id) == patient_id).with_for_update())
    for flag in rows.scalars():
        if not any(item["id"] in wanted for item in flag.evidence):
            continue
        flag.evidence = [
            {**item, "retracted": item.get("retracted", False) or item["id"] in wanted}
            for item in flag.evidence
        ]
        flag.updated_at = utcnow()
        session.add(flag)
    await session.flush()


async def flags_with_evidence(
    session: AsyncSession, patient_id: uuid.UUID, entry_ids: set[uuid.UUID]
) -> list[FlagPublic]:
    """The flags these entries are evidence for (for answering a retry as the first write did)."""
    wanted = {str(i) for i in entry_ids}
    rows = await session.execute(
        select(Flag).where(col(Flag.patient_id) == patient_id).order_by(col(Flag.created_at))
    )
    return [to_public(f) for f in rows.scalars() if any(item["id"] in wanted for item in f.evidence)]


# ---- reading and the lifecycle ---------------------------------------------------------------------


def readable_flags(caller: Caller) -> Any:
    return select(Flag).where(col(Flag.patient_id).in_(readable_patient_ids(caller)))


async def list_flags(
    session: AsyncSession,
    caller: Caller,
    *,
    status: FlagStatus | None,
    severity: Severity | None,
    patient_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[FlagPublic]:
    """Most severe first, then oldest first: the triage order."""
    statement = readable_flags(caller)
    if status is not None:
        statement = statement.where(col(Flag.status) == status.value)
    if severity is not None:
        statement = statement.where(col(Flag.severity) == severity.value)
    if patient_id is not None:
        statement = statement.where(col(Flag.patient_id) == patient_id)
    if cursor:
        try:
            data = b64_json_decode(cursor)
            rank, last_id = int(data["rank"]), uuid.UUID(data["id"])
            at = datetime.fromisoformat(data["at"])
            if at.tzinfo is None or not 1900 <= at.year <= 2100:
                raise ValueError("not a cursor we made")
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationFailed(
                [FieldError(("query", "cursor"), "is not a cursor this API gave")]
            ) from exc
        statement = statement.where(
            or_(
                col(Flag.severity_rank) < rank,
                and_(col(Flag.severity_rank) == rank, col(Flag.created_at) > at),
                and_(col(Flag.severity_rank) == rank, col(Flag.created_at) == at, col(Flag.id) > last_id),
            )
        )
    statement = statement.order_by(col(Flag.severity_rank).desc(), col(Flag.created_at), col(Flag.id))
    rows = list((await session.execute(statement.limit(limit + 1))).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = b64_json_encode(
            {"rank": last.severity_rank, "at": utc(last.created_at).isoformat(), "id": str(last.id)}
        )
    await audit.record(session, caller, "GET /v1/flags", list(dict.fromkeys(f.patient_id for f in rows)))
    return Page(items=[to_public(f) for f in rows], next_cursor=next_cursor)


async def flag_in_scope(
    session: AsyncSession, caller: Caller, flag_id: uuid.UUID, *, lock: bool = False
) -> Flag:
    statement = readable_flags(caller).where(col(Flag.id) == flag_id)
    if lock:
        statement = statement.with_for_update()
    flag: Flag | None = (
        (await session.execute(statement.execution_options(populate_existing=True))).scalars().first()
    )
    if flag is None:
        raise NotFound("No such flag.")
    return flag


async def get_flag(session: AsyncSession, caller: Caller, flag_id: uuid.UUID) -> FlagPublic:
    flag = await flag_in_scope(session, caller, flag_id)
    await audit.record(session, caller, "GET /v1/flags/{flag_id}", [flag.patient_id])
    return to_public(flag)


async def acknowledge(
    session: AsyncSession, caller: Caller, flag_id: uuid.UUID, body: AcknowledgeRequest
) -> FlagPublic:
    flag = await flag_in_scope(session, caller, flag_id, lock=True)
    require_role(caller, Role.provider, Role.admin)
    if flag.status == FlagStatus.resolved.value:
        raise Conflict("The flag is resolved already.")
    if flag.status == FlagStatus.open.value:
        now = utcnow()
        flag.status = FlagStatus.acknowledged.value
        flag.acknowledged_at, flag.acknowledged_by, flag.updated_at = now, caller.user_id, now
        if body.note:
            flag.note = body.note
        session.add(flag)
        await session.flush()
    await audit.record(session, caller, "POST /v1/flags/{flag_id}/acknowledge", [flag.patient_id])
    return to_public(flag)


async def resolve(
    session: AsyncSession, caller: Caller, flag_id: uuid.UUID, body: ResolveRequest
) -> FlagPublic:
    flag = await flag_in_scope(session, caller, flag_id, lock=True)
    require_role(caller, Role.provider, Role.admin)
    if flag.status == FlagStatus.resolved.value:
        raise Conflict("The flag is resolved already.")
    now = utcnow()
    if flag.acknowledged_at is None:
        flag.acknowledged_at, flag.acknowledged_by = now, caller.user_id
    flag.status = FlagStatus.resolved.value
    flag.resolved_at, flag.resolved_by, flag.updated_at = now, caller.user_id, now
    flag.note = body.note
    session.add(flag)
    await session.flush()
    await audit.record(session, caller, "POST /v1/flags/{flag_id}/resolve", [flag.patient_id])
    return to_public(flag)
