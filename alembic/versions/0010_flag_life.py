"""a flag's life: dated by its evidence, with its history and the unacknowledged-alert deadline

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:40:00

Existing flags get `observed_at` and `last_observed_at` from their first evidence entry's own time
(a time-rule flag, whose evidence is a regimen, keeps its creation time), and a history rebuilt from
what they kept (created; acknowledged; resolved with the note). Webhook endpoints that hear
`flag.created` also hear the new `flag.reopened` and `flag.unacknowledged`: an urgent answer on an
acknowledged flag must reach the clinics that already receive alerts.

Its two indexes are built inside its transaction, not concurrently (services/platform/index_builds.py):
the backfill and NOT NULL already hold the flag table exclusively until the commit, and a concurrent
build after that commit could fail with the columns added but the revision still 0009, which a rerun
could not repair. The whole migration stays one step that either happens or does not.
"""

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

import models.base
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_EVENTS = ['flag.reopened', 'flag.unacknowledged']
_ENTRY_TIMES = {
    'check_in': ('check_in', 'submitted_at'),
    'dose': ('dose', 'taken_at'),
    'anxiety': ('anxiety_score', 'recorded_at'),
    'symptom': ('symptom_report', 'reported_at'),
}


def _flag_table() -> sa.Table:
    return sa.table(
        'flag',
        sa.column('id', sa.Uuid()),
        sa.column('evidence', sa.JSON()),
        sa.column('reason', sa.String()),
        sa.column('status', sa.String()),
        sa.column('note', sa.String()),
        sa.column('created_at', models.base.UTCDateTime()),
        sa.column('acknowledged_at', models.base.UTCDateTime()),
        sa.column('acknowledged_by', sa.Uuid()),
        sa.column('resolved_at', models.base.UTCDateTime()),
        sa.column('resolved_by', sa.Uuid()),
        sa.column('observed_at', models.base.UTCDateTime()),
        sa.column('last_observed_at', models.base.UTCDateTime()),
        sa.column('history', sa.JSON()),
    )


def _step(action: str, at: Any, by: Any = None, note: Any = None, reason: Any = None) -> dict[str, Any]:
    step: dict[str, Any] = {'at': at.isoformat(), 'action': action}
    for key, value in (('by', by), ('note', note), ('reason', reason)):
        if value is not None:
            step[key] = str(value)
    return step


def _backfill() -> None:
    bind = op.get_bind()
    flag = _flag_table()
    flags = bind.execute(sa.select(flag)).all()
    first: dict[Any, tuple[str, Any]] = {}
    wanted: dict[str, set[Any]] = {}
    for row in flags:
        evidence = row.evidence if not isinstance(row.evidence, str) else json.loads(row.evidence)
        if evidence and evidence[0].get('type') in _ENTRY_TIMES:
            kind, entry_id = evidence[0]['type'], uuid.UUID(str(evidence[0]['id']))
            first[row.id] = (kind, entry_id)
            wanted.setdefault(kind, set()).add(entry_id)
    times: dict[tuple[str, Any], Any] = {}
    for kind, ids in wanted.items():
        table_name, column = _ENTRY_TIMES[kind]
        table = sa.table(table_name, sa.column('id', sa.Uuid()), sa.column(column, models.base.UTCDateTime()))
        for entry_id, at in bind.execute(sa.select(table.c.id, table.c[column]).where(table.c.id.in_(ids))):
            times[(kind, entry_id)] = at
    for row in flags:
        observed = times.get(first.get(row.id, ('', None)), row.created_at)
        history = [_step('created', row.created_at, reason=row.reason)]
        if row.acknowledged_at is not None:
            note = row.note if row.status == 'acknowledged' else None
            history.append(_step('acknowledged', row.acknowledged_at, row.acknowledged_by, note))
        if row.resolved_at is not None:
            history.append(_step('resolved', row.resolved_at, row.resolved_by, row.note))
        bind.execute(
            flag.update()
            .where(flag.c.id == row.id)
            .values(observed_at=observed, last_observed_at=observed, history=history)
        )


def _subscribe_new_events(add: bool) -> None:
    bind = op.get_bind()
    endpoint = sa.table('webhook_endpoint', sa.column('id', sa.Uuid()), sa.column('events', sa.JSON()))
    for endpoint_id, events in bind.execute(sa.select(endpoint.c.id, endpoint.c.events)).all():
        events = json.loads(events) if isinstance(events, str) else list(events)
        if add and 'flag.created' in events:
            changed = events + [e for e in NEW_EVENTS if e not in events]
        elif not add:
            changed = [e for e in events if e not in NEW_EVENTS] or ['flag.created', 'flag.escalated']
        else:
            continue
        if changed != events:
            bind.execute(endpoint.update().where(endpoint.c.id == endpoint_id).values(events=changed))


def upgrade() -> None:
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('observed_at', models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_observed_at', models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('history', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('unacknowledged_alert_due_at', models.base.UTCDateTime(), nullable=True))
    _backfill()
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.alter_column('observed_at', existing_type=models.base.UTCDateTime(), nullable=False)
        batch_op.alter_column('last_observed_at', existing_type=models.base.UTCDateTime(), nullable=False)
        batch_op.alter_column('history', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_index('ix_flag_status_severity_rank_created_at')
        batch_op.create_index(
            'ix_flag_status_severity_rank_observed_at', ['status', 'severity_rank', 'observed_at'], unique=False
        )
        batch_op.create_index(
            'ix_flag_unacknowledged_alert_due_at', ['unacknowledged_alert_due_at'], unique=False
        )
    _subscribe_new_events(add=True)


def downgrade() -> None:
    _subscribe_new_events(add=False)
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.drop_index('ix_flag_unacknowledged_alert_due_at')
        batch_op.drop_index('ix_flag_status_severity_rank_observed_at')
        batch_op.create_index(
            'ix_flag_status_severity_rank_created_at', ['status', 'severity_rank', 'created_at'], unique=False
        )
        batch_op.drop_column('unacknowledged_alert_due_at')
        batch_op.drop_column('history')
        batch_op.drop_column('last_observed_at')
        batch_op.drop_column('observed_at')
