"""a regimen's override reason: why a schedule above the label maximum was prescribed

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 19:00:00

CLINICAL.md 4, checks when a regimen is written: a schedule above the label maximum for the patient's
creatinine clearance (or 3600 mg a day) is kept only with the prescriber's reason. Existing regimens
get none (null): they were written before the check.

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('regimen', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('override_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('regimen', schema=None) as batch_op:
        batch_op.drop_column('override_reason')
