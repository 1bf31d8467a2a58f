"""index the instants retention deletes by: outbox events, webhook attempts and audit rows

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 17:00:00

The worker's retention job (services/platform/retention.py) deletes the oldest rows a batch at a time;
without these indexes each batch would scan the whole table. On PostgreSQL they are built
CONCURRENTLY, outside the migration's transaction (services/platform/index_builds.py), so writers (alerts, the audit trail of every
request) are never blocked while a large table is indexed; an invalid index left by an interrupted
build is dropped and built again.
"""

from collections.abc import Sequence

from services.platform import index_builds

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_outbox_event_created_at", "outbox_event", "created_at"),
    ("ix_webhook_attempt_attempted_at", "webhook_attempt", "attempted_at"),
    ("ix_audit_event_occurred_at", "audit_event", "occurred_at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        index_builds.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _column in reversed(INDEXES):
        index_builds.drop_index(name, table)
