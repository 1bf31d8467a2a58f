"""index the instants retention deletes by: outbox events, webhook attempts and audit rows

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:00:00

The worker's retention job (services/platform/retention.py) deletes the oldest rows a batch at a time;
without these indexes each batch would scan the whole table. On PostgreSQL they are built
CONCURRENTLY, outside the migration's transaction, so writers (alerts, the audit trail of every
request) are never blocked while a large table is indexed; an invalid index left by an interrupted
build is dropped and built again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_outbox_event_created_at", "outbox_event", "created_at"),
    ("ix_webhook_attempt_attempted_at", "webhook_attempt", "attempted_at"),
    ("ix_audit_event_occurred_at", "audit_event", "occurred_at"),
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for name, table, column in INDEXES:
            op.create_index(name, table, [column], unique=False)
        return
    with op.get_context().autocommit_block():
        for name, table, column in INDEXES:
            invalid = op.get_bind().execute(
                sa.text(
                    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = :name AND NOT i.indisvalid"
                ),
                {"name": name},
            )
            if invalid.first() is not None:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({column})")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for name, table, _column in reversed(INDEXES):
            op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        for name, _table, _column in reversed(INDEXES):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
