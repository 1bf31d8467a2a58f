"""patient facts for respiratory risk: other sedating medicines, lung disease

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 19:00:00

CLINICAL.md 3 (revised): a patient is at respiratory risk when they take opioids or benzodiazepines,
take other sedating medicines, have lung disease, or are 65 or over. The two new yes/no facts are
added as false (unknown until a provider sets them) for every existing patient, by a server default
that stays on the column: no row is rewritten and nothing else changes (on SQLite too, `ADD COLUMN`
with a constant default alters the table in place).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_FACTS = ('takes_other_cns_depressants', 'has_lung_disease')


def upgrade() -> None:
    for name in NEW_FACTS:
        op.add_column(
            'patient', sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('patient', schema=None) as batch_op:
        for name in reversed(NEW_FACTS):
            batch_op.drop_column(name)
