"""Marking an entry entered-in-error: kept for the audit trail, left out of summaries and rules, and
retracted as evidence from the flags it supported. A check-in takes its parts with it."""

from __future__ import annotations

import uuid

from models.entries import AnxietyScore, CheckIn, Dose, EntryKind, SymptomReport
from services.entries import store
from services.entries.recorder import Context
from services.errors import NotFound
from services.flags import lifecycle as flags

ENTRY_MODELS: dict[EntryKind, store.EntryModel] = {
    EntryKind.dose: Dose,
    EntryKind.anxiety: AnxietyScore,
    EntryKind.symptom: SymptomReport,
    EntryKind.check_in: CheckIn,
}


async def mark_entered_in_error(ctx: Context, kind: EntryKind, entry_id: uuid.UUID) -> None:
    """Marking twice is harmless: the first mark stands."""
    model = ENTRY_MODELS[kind]
    entry = await ctx.session.get(model, entry_id)
    if entry is None or entry.patient_id != ctx.patient.id:
        raise NotFound("No such entry.")
    by = ctx.caller.user_id
    await store.mark_entered_in_error(ctx.session, model, entry_id, ctx.now, by)
    retracted = {entry_id}
    if kind == EntryKind.check_in:
        retracted |= await store.mark_parts_entered_in_error(ctx.session, entry_id, ctx.now, by)
    await flags.retract_evidence(ctx.session, ctx.patient.id, retracted)
