"""drop login_failure_window: sign-in counters live in memory or Redis

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table('login_failure_window')


def downgrade() -> None:
    op.create_table('login_failure_window',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('window_started_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_failure_window'))
    )
