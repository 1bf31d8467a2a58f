"""Flags: raising them from rule findings, their lifecycle, and the provider triage queue.

One flag that is not resolved per patient, rule and symptom (CLINICAL.md 4, "A flag's life"): new
evidence attaches to it, a higher severity escalates it, and an urgent finding on an acknowledged flag
reopens it (a unique index makes this hold under concurrency too). A flag is dated by its evidence
(`observed_at`, `last_observed_at`), not by when the server raised it, and keeps every step in its
`history`. Every flag created, escalated or reopened writes an outbox event in the same transaction,
for the webhook worker to deliver; an urgent one left open is announced again
(services/flags/unacknowledged.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Patient, Role, User
from models.base import utcnow
from models.common import Page
from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport
from models.flags import (
    AcknowledgeRequest,
    EvidencePublic,
    Flag,
    FlagAction,
    FlagHistoryItem,
    FlagPublic,
    FlagStatus,
    ResolveRequest,
    Severity,
)
from services.accounts import audit
from services.accounts.access import Caller, readable_patient_ids, require_role
from services.alerting import outbox
from services.clinical.rules import ADVICE, Finding, write_time_rules
from services.errors import Conflict, NotFound
from services.flags.flag_history import RuleReads, TakenBefore, snapshot_for
from services.localtime import utc
from services.pagination import (
    NOT_A_CURSOR,
    b64_json_encode,
    cursor_fields,
    cursor_instant,
    cursor_int,
    cursor_uuid,
    invalid_cursor,
)
from services.prescribing.regimens import RegimensInForce
from services.settings import Settings

ACTIVE = (FlagStatus.open.value, FlagStatus.acknowledged.value)


def to_public(flag: Flag, patient_name: str | None = None) -> FlagPublic:
    return FlagPublic(
        id=flag.id,
        patient_id=flag.patient_id,
        patient_name=patient_name,
        rule=flag.rule,
        severity=Severity(flag.severity),
        status=FlagStatus(flag.status),
        reason=flag.reason,
        symptom_code=flag.symptom_code,
        evidence=[EvidencePublic(**item) for item in flag.evidence],
        observed_at=utc(flag.observed_at),
        last_observed_at=utc(flag.last_observed_at),
        created_at=utc(flag.created_at),
        updated_at=utc(flag.updated_at),
        acknowledged_at=utc(flag.acknowledged_at),
        acknowledged_by=flag.acknowledged_by,
        resolved_at=utc(flag.resolved_at),
        resolved_by=flag.resolved_by,
        note=flag.note,
        history=[FlagHistoryItem.model_validate(step) for step in flag.history],
    )


def add_step(
    flag: Flag,
    action: FlagAction,
    at: datetime,
    *,
    by: uuid.UUID | None = None,
    note: str | None = None,
    reason: str | None = None,
) -> None:
    """Appends a step to the flag's history (a new list, so the JSON column is written)."""
    step: dict[str, Any] = {"at": utc(at).isoformat(), "action": action.value}
    if by is not None:
        step["by"] = str(by)
    if note is not None:
        step["note"] = note
    if reason is not None:
        step["reason"] = reason
    flag.history = [*flag.history, step]


def _unacknowledged_alert_due(settings: Settings, now: datetime) -> datetime:
    return now + timedelta(minutes=settings.unacknowledged_alert_minutes)


@dataclass(frozen=True)
class Observed:
    """When a finding's evidence happened (the entries' own times) and when it reached the server."""

    first: datetime
    last: datetime
    arrived: datetime

    @classmethod
    def now(cls, now: datetime) -> Observed:
        """A finding with no entry of its own to date it (a lapse the periodic job found)."""
        return cls(now, now, now)


def entry_time(row: Any) -> datetime | None:
    """An entry's own time: when the dose was taken, the score recorded, the report or check-in made
    (from the model's object or its plain row: services/entries/rows.py; both name their table)."""
    column = _ENTRY_TIME.get(getattr(row, "__tablename__", None))
    return getattr(row, column) if column is not None else None


_ENTRY_TIME: dict[str | None, str] = {
    Dose.__tablename__: "taken_at",
    AnxietyScore.__tablename__: "recorded_at",
    SymptomReport.__tablename__: "reported_at",
    CheckIn.__tablename__: "submitted_at",
}


def _observed(finding: Finding, times: dict[uuid.UUID, datetime], now: datetime) -> Observed:
    """Dated by the new entries that made the finding (its evidence may name older ones too)."""
    new = [times[ref.id] for ref in finding.evidence if ref.id in times]
    if not new:
        return Observed.now(now)
    return Observed(min(new), max(new), now)


def _reason(settings: Settings, patient: Patient, finding: Finding, observed: Observed) -> str:
    """The finding's reason; evidence that arrived late says when it happened and when it arrived."""
    if observed.arrived - observed.last <= timedelta(hours=settings.late_evidence_hours):
        return finding.reason
    zone = ZoneInfo(patient.timezone)
    happened = utc(observed.last).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    arrived = utc(observed.arrived).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    late = f" Late: happened {happened}, arrived {arrived} ({patient.timezone})."
    return (finding.reason + late)[:500]


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
    reads: RuleReads | None = None,
) -> list[FlagPublic]:
    """Run the write-time rules over entries just recorded (same transaction). Returns the flags they
    raised, escalated or added evidence to; the flags are read only for what a rule found. `reads`: the
    history the rules need, when the statement that wrote the entries read it (flag_history.RuleReads)."""
    snapshot = await snapshot_for(session, settings, patient, new_rows, regimens, taken_before, reads)
    rules = write_time_rules(
        settings.persistent_symptom_min_days,
        settings.persistent_symptom_window_days,
        settings.persistent_symptom_min_grade,
    )
    findings = [finding for rule in rules for finding in rule(snapshot)]
    if not findings:
        return []
    now = utcnow()
    times = {row.id: at for row in new_rows if (at := entry_time(row)) is not None}
    touched: dict[uuid.UUID, Flag] = {}
    for finding in findings:
        flag = await apply_finding(session, settings, patient, finding, _observed(finding, times, now))
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


async def apply_finding(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    finding: Finding,
    observed: Observed | None = None,
) -> Flag | None:
    """Create the flag, or attach the evidence to the one already active (escalating it when the
    finding is more severe, reopening an acknowledged one on an urgent finding). None when a
    time-based lapse was already flagged and resolved. `observed` dates the evidence; without it, the
    finding is dated now."""
    symptom_key = finding.symptom_code or ""
    now = utcnow()
    observed = observed or Observed.now(now)
    if finding.episode is not None and await _episode_seen(session, patient.id, finding):
        return None
    reason = _reason(settings, patient, finding, observed)
    for _attempt in range(3):
        existing = await _active_flag(session, patient.id, finding.rule, symptom_key)
        if existing is not None:
            return await _attach(session, settings, patient, existing, finding, reason, observed, now)
        urgent = finding.severity == Severity.urgent
        flag = Flag(
            patient_id=patient.id,
            organization_id=patient.organization_id,
            rule=finding.rule,
            severity=finding.severity.value,
            severity_rank=finding.severity.rank,
            reason=reason,
            symptom_code=finding.symptom_code,
            symptom_key=symptom_key,
            episode=finding.episode,
            evidence=[{"type": ref.type, "id": str(ref.id), "retracted": False} for ref in finding.evidence],
            observed_at=observed.first,
            last_observed_at=observed.last,
            unacknowledged_alert_due_at=_unacknowledged_alert_due(settings, now) if urgent else None,
            created_at=now,
            updated_at=now,
        )
        add_step(flag, FlagAction.created, now, reason=reason)
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


async def _attach(
    session: AsyncSession,
    settings: Settings,
    patient: Patient,
    flag: Flag,
    finding: Finding,
    reason: str,
    observed: Observed,
    now: datetime,
) -> Flag:
    known = {(item["type"], item["id"]) for item in flag.evidence}
    added = [
        {"type": ref.type, "id": str(ref.id), "retracted": False}
        for ref in finding.evidence
        if (ref.type, str(ref.id)) not in known
    ]
    escalated = finding.severity.rank > flag.severity_rank
    # CLINICAL.md 4: a clinician who acknowledged Monday's answer must hear about Tuesday's.
    reopened = (
        not escalated
        and bool(added)
        and finding.severity == Severity.urgent
        and flag.status == FlagStatus.acknowledged.value
    )
    if not added and not escalated:
        return flag
    flag.evidence = [*flag.evidence, *added]
    flag.updated_at = now
    flag.reason = reason  # always the most recent evidence; the earlier ones stay in the history
    flag.observed_at = min(utc(flag.observed_at), utc(observed.first))
    flag.last_observed_at = max(utc(flag.last_observed_at), utc(observed.last))
    if escalated:
        flag.severity = finding.severity.value
        flag.severity_rank = finding.severity.rank
        action, event = FlagAction.escalated, "flag.escalated"
    elif reopened:
        action, event = FlagAction.reopened, "flag.reopened"
    else:
        action, event = FlagAction.evidence_added, None
    if event is not None:
        # Needs fresh attention, even if the flag had been acknowledged.
        flag.status = FlagStatus.open.value
        if finding.severity == Severity.urgent:
            flag.unacknowledged_alert_due_at = _unacknowledged_alert_due(settings, now)
    add_step(flag, action, now, reason=reason)
    session.add(flag)
    await session.flush()
    if event is not None:
        await outbox.flag_event(session, event, patient, to_public(flag))
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


# The triage queue (API.md): open before acknowledged (then resolved), most severe, oldest evidence.
_STATUS_RANK = {FlagStatus.open.value: 0, FlagStatus.acknowledged.value: 1, FlagStatus.resolved.value: 2}
_status_rank = case(_STATUS_RANK, value=col(Flag.status), else_=3)


async def _patient_names(session: AsyncSession, caller: Caller, flags: list[Flag]) -> dict[uuid.UUID, str]:
    """Staff see each flag's patient by name; a patient's own list carries none."""
    if not caller.is_staff or not flags:
        return {}
    rows = await session.execute(
        select(col(Patient.id), col(User.name))
        .join(User, col(User.id) == col(Patient.user_id))
        .where(col(Patient.id).in_({f.patient_id for f in flags}))
    )
    return {patient_id: name for patient_id, name in rows}


def _cursor_after(cursor: str) -> Any:
    try:
        data = cursor_fields(cursor, "status", "rank", "at", "id")
        status, rank = cursor_int(data["status"], 0, 3), cursor_int(data["rank"], 0, 3)
        last_id, at = cursor_uuid(data["id"]), cursor_instant(data["at"])
    except NOT_A_CURSOR as exc:
        raise invalid_cursor() from exc
    return or_(
        _status_rank > status,
        and_(_status_rank == status, col(Flag.severity_rank) < rank),
        and_(_status_rank == status, col(Flag.severity_rank) == rank, col(Flag.observed_at) > at),
        and_(
            _status_rank == status,
            col(Flag.severity_rank) == rank,
            col(Flag.observed_at) == at,
            col(Flag.id) > last_id,
        ),
    )


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
    """The triage order: open before acknowledged, most severe first, then oldest evidence first."""
    statement = readable_flags(caller)
    if status is not None:
        statement = statement.where(col(Flag.status) == status.value)
    if severity is not None:
        statement = statement.where(col(Flag.severity) == severity.value)
    if patient_id is not None:
        statement = statement.where(col(Flag.patient_id) == patient_id)
    if cursor:
        statement = statement.where(_cursor_after(cursor))
    statement = statement.order_by(
        _status_rank, col(Flag.severity_rank).desc(), col(Flag.observed_at), col(Flag.id)
    )
    rows = list((await session.execute(statement.limit(limit + 1))).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = b64_json_encode(
            {
                "status": _STATUS_RANK.get(last.status, 3),
                "rank": last.severity_rank,
                "at": utc(last.observed_at).isoformat(),
                "id": str(last.id),
            }
        )
    names = await _patient_names(session, caller, rows)
    audit.defer(session, caller, "GET /v1/flags", list(dict.fromkeys(f.patient_id for f in rows)))
    return Page(items=[to_public(f, names.get(f.patient_id)) for f in rows], next_cursor=next_cursor)


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


async def _public_for(session: AsyncSession, caller: Caller, flag: Flag) -> FlagPublic:
    names = await _patient_names(session, caller, [flag])
    return to_public(flag, names.get(flag.patient_id))


async def get_flag(session: AsyncSession, caller: Caller, flag_id: uuid.UUID) -> FlagPublic:
    flag = await flag_in_scope(session, caller, flag_id)
    audit.defer(session, caller, "GET /v1/flags/{flag_id}", [flag.patient_id])
    return await _public_for(session, caller, flag)


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
        flag.unacknowledged_alert_due_at = None
        if body.note:
            flag.note = body.note
        add_step(flag, FlagAction.acknowledged, now, by=caller.user_id, note=body.note or None)
        session.add(flag)
        await session.flush()
    await audit.record(session, caller, "POST /v1/flags/{flag_id}/acknowledge", [flag.patient_id])
    return await _public_for(session, caller, flag)


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
    flag.unacknowledged_alert_due_at = None
    flag.note = body.note
    add_step(flag, FlagAction.resolved, now, by=caller.user_id, note=body.note)
    session.add(flag)
    await session.flush()
    await audit.record(session, caller, "POST /v1/flags/{flag_id}/resolve", [flag.patient_id])
    return await _public_for(session, caller, flag)
