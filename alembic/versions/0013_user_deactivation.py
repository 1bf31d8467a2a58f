"""accounts can be closed: when a user was deactivated, and whose account an audited action was on

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:10:00

`user_account.is_active` exists since 0001; `deactivated_at` says since when an account is closed.
`audit_event.target_user_id` names the account a deactivation or reactivation was done to (staff have
no patient id to put in the trail). Both nullable: existing rows need nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_account') as batch_op:
        batch_op.add_column(sa.Column('deactivated_at', models.base.UTCDateTime(), nullable=True))
    with op.batch_alter_table('audit_event') as batch_op:
        batch_op.add_column(sa.Column('target_user_id', sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_event') as batch_op:
        batch_op.drop_column('target_user_id')
    with op.batch_alter_table('user_account') as batch_op:
        batch_op.drop_column('deactivated_at')
