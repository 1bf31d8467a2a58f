"""Recording one entry from the phone, the same way for every kind:

validate -> fingerprint -> store once -> evaluate the flag rules -> answer.

A kind (`services.entries.kinds`) supplies only what differs: how its content is checked and turned into
rows, and how its answer looks. A first write answers created=True; an identical retry (same id and
content) answers the stored entry with the flags it raised, so a phone whose first answer was lost still
shows the advice; the same id with other content is a Conflict. Nothing of a rejected request is
stored: every check runs before the first write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from models.accounts import Patient
from models.base import utcnow
from models.entries import EntryKind
from models.flags import FlagPublic
from services.accounts.access import Caller
from services.entries import store
from services.entries.idempotency import fingerprint
from services.entries.rows import EntryRow
from services.entries.store import EntryModel
from services.errors import Conflict, FieldError, ValidationFailed
from services.flags import lifecycle as flags
from services.flags.flag_history import RuleReads, TakenBefore
from services.localtime import local_date
from services.prescribing.regimens import RegimensInForce
from services.settings import Settings

Loc = tuple[str | int, ...]
BODY: Loc = ("body",)


@dataclass
class Context:
    """Who records, for whom, and when the request arrived."""

    session: AsyncSession
    settings: Settings
    caller: Caller
    patient: Patient
    now: datetime
    # The regimen in force per local day, fetched once for the dose's medication and the dose rule.
    regimens: RegimensInForce = field(default_factory=RegimensInForce)
    # The doses taken on those days before this request, read with the regimen (flag_history.read_dose_day).
    taken_before: TakenBefore = field(default_factory=dict)
    # The history the rules read, when the statement that stored the entry read it too
    # (check_in_statement): the rules then ask nothing more.
    reads: RuleReads | None = None

    @property
    def latest_allowed(self) -> datetime:
        return self.now + timedelta(minutes=self.settings.future_tolerance_minutes)

    def local_date(self, instant: datetime) -> date:
        return local_date(instant, self.patient.timezone)

    def not_in_future(self, instant: datetime | None, loc: Loc, errors: list[FieldError]) -> list[FieldError]:
        """Adds the problem of an instant too far ahead to `errors`, and gives `errors` back."""
        if instant is not None and instant > self.latest_allowed:
            minutes = self.settings.future_tolerance_minutes
            errors.append(FieldError(loc, f"is more than {minutes} minutes in the future"))
        return errors


def context(session: AsyncSession, settings: Settings, caller: Caller, patient: Patient) -> Context:
    return Context(session=session, settings=settings, caller=caller, patient=patient, now=utcnow())


def raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


Body = TypeVar("Body", bound=BaseModel)
Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True)
class EntryRecipe(Generic[Body, Answer]):
    """What one kind of entry brings to the recorder."""

    kind: EntryKind
    model: EntryModel
    # Checks the content (raising ValidationFailed with every problem) and builds the rows to insert;
    # the entry's own row first, its parts after it.
    rows: Callable[[Context, Body, str], Awaitable[list[EntryRow]]]
    # The answer to a first write, from the rows just written and the flags they raised.
    answer: Callable[[list[EntryRow], list[FlagPublic]], Answer]
    # The answer to a retry, from the stored entry.
    retried: Callable[[Context, Any], Awaitable[Answer]]
    # Inserts the entry's rows unless its id is taken (True when inserted; Conflict when a part's id is
    # another entry's), for a kind that does more in that statement; by default `insert_rows`.
    insert: Callable[[Context, list[EntryRow]], Awaitable[bool]] | None = None


async def record(ctx: Context, recipe: EntryRecipe[Body, Answer], data: Body) -> tuple[bool, Answer]:
    entry_id = data.id  # type: ignore[attr-defined]  # every entry body has the phone's id
    content_hash = fingerprint(recipe.kind, ctx.patient.id, data)
    rows = await recipe.rows(ctx, data, content_hash)
    # Insert first, read only when nothing was inserted: a retry, a conflict, or a concurrent twin that
    # won the race (it held the key until it committed).
    inserted = await (recipe.insert or insert_rows)(ctx, rows)
    if not inserted:
        stored = await store.stored_entry(ctx.session, recipe.model, entry_id, content_hash)
        return False, await recipe.retried(ctx, stored)
    # The write-time flag rules, in this same transaction: the entry and its flags commit together.
    raised = await flags.evaluate_new_entries(
        ctx.session, ctx.settings, ctx.patient, rows, ctx.regimens, ctx.taken_before, ctx.reads
    )
    return True, recipe.answer(rows, raised)


async def insert_rows(ctx: Context, rows: list[EntryRow]) -> bool:
    """The entry's own row unless its id is taken (True when inserted), then its parts, one statement
    per table; Conflict when a part's id is another entry's."""
    if not await store.insert_new(ctx.session, rows[0].model, rows[:1]):
        return False
    if taken := await insert_parts(ctx.session, rows[1:]):
        raise Conflict(part_taken(rows[1:], taken))
    return True


async def insert_parts(session: AsyncSession, parts: list[EntryRow]) -> set[Any]:
    """Inserts a check-in's parts, one statement per table; the ids another entry already had."""
    taken: set[Any] = set()
    for model in store.PART_MODELS:
        group = [row for row in parts if row.model is model]
        inserted = await store.insert_new(session, model, group)
        taken |= {row.id for row in group} - inserted
    return taken


PART_FIELDS = {"Dose": "doses", "SymptomReport": "symptoms", "AnxietyScore": "anxiety"}


def part_taken(parts: list[EntryRow], taken: set[Any]) -> str:
    """Names the first part whose id another entry has, as the check-in's body names it."""
    for model in store.PART_MODELS:
        group = [row for row in parts if row.model is model]
        for index, row in enumerate(group):
            if row.id in taken:
                field_name = PART_FIELDS[model.__name__]
                return f"{field_name}[{index}].id is already used by another entry; give the part a new id."
    return "A part of this entry uses an id another entry has."


async def flags_raised_by(ctx: Context, entry_ids: set[Any]) -> list[FlagPublic]:
    """The flags a stored entry (and its parts) raised or added evidence to."""
    return await flags.flags_with_evidence(ctx.session, ctx.patient.id, entry_ids)
