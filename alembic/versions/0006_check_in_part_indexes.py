"""index check-in parts by check_in_id

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:55:11.598383

The entry tables already hold rows: on PostgreSQL the indexes are built concurrently, outside the
migration's transaction, and a rerun after a failed build finishes it (services/platform/index_builds.py).
"""

from collections.abc import Sequence

from services.platform import index_builds

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('anxiety_score', 'dose', 'symptom_report')


def upgrade() -> None:
    for table in TABLES:
        index_builds.create_index(f'ix_{table}_check_in_id', table, ['check_in_id'])


def downgrade() -> None:
    for table in reversed(TABLES):
        index_builds.drop_index(f'ix_{table}_check_in_id', table)
