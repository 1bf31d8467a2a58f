"""index flags by status, rule and severity: the /metrics counts read the index alone

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:00:00

The scrape counts open and acknowledged flags by rule and severity (at most 10,000 a status). With
only (status, severity_rank, observed_at) to go on, each counted flag cost a read of its table page
for its rule and severity: 10,000 random page reads a status (~0.2 s cold at 1M flags). This index
holds all three columns, so the count is an index-only scan (~3 ms). Built CONCURRENTLY on
PostgreSQL, outside the migration's transaction, so writers to `flag` are never blocked.

An index-only scan still reads the table page of each entry whose page changed since the last vacuum
(bench/scrape.py: 30,000 pages a scrape at 2M deliveries never vacuumed, 55 once vacuumed).
PostgreSQL's default autovacuum waits for 20% of a table to change (400,000 deliveries at 2M):
`flag` and `webhook_delivery` are vacuumed after 1% instead, which keeps the visibility map, and so
the counts and the delivery claim, cheap. Each of those vacuums skips the pages already all-visible.
"""

from collections.abc import Sequence

from alembic import op
from services.platform import index_builds

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = 'ix_flag_status_rule_severity'
TABLES = ('flag', 'webhook_delivery')
VACUUM_SOONER = 'autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01'


def upgrade() -> None:
    index_builds.create_index(NAME, 'flag', ['status', 'rule', 'severity'])
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:  # a lock that blocks neither reads nor writes, only other DDL and vacuums
            op.execute(f'ALTER TABLE {table} SET ({VACUUM_SOONER})')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(
                f'ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, '
                'autovacuum_vacuum_insert_scale_factor)'
            )
    index_builds.drop_index(NAME, 'flag')
