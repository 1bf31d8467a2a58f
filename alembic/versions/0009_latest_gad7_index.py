"""index anxiety scores by patient, instrument and time: the panel's last GAD-7 band

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 11:00:00

Without it the newest GAD-7 of a patient is found by sorting every anxiety score they ever recorded
(ratings included), so the panel's cost grew with the length of each patient's history. The table
already holds rows: on PostgreSQL the index is built concurrently, outside the migration's
transaction, and a rerun after a failed build finishes it (services/platform/index_builds.py).
"""

from collections.abc import Sequence

from services.platform import index_builds

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_builds.create_index(
        'ix_anxiety_score_patient_id_instrument_recorded_at',
        'anxiety_score',
        ['patient_id', 'instrument', 'recorded_at'],
    )


def downgrade() -> None:
    index_builds.drop_index('ix_anxiety_score_patient_id_instrument_recorded_at', 'anxiety_score')
