"""encrypt webhook secrets at rest

Widens webhook_endpoint.secret and previous_secret for Fernet tokens, then encrypts the stored
secrets with the key the app uses (services/alerting/webhook_secrets.py, from the settings the migration runs
with). The downgrade never writes a secret back in clear: it refuses while any endpoint holds an
encrypted one (the schema before 0007 read them as plaintext), then narrows the columns again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:53:59.126075
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate names sqlmodel.sql.sqltypes.AutoString
from alembic import context, op

from services.alerting import webhook_secrets
from services.platform.migrations import MigrationRefused
from services.settings import Settings, get_settings

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAINTEXT_PREFIX = "whsec_"

endpoints = sa.table(
    "webhook_endpoint",
    sa.column("id", sa.Uuid()),
    sa.column("secret", sa.String()),
    sa.column("previous_secret", sa.String()),
)


def _settings() -> Settings:
    # `symptrack migrate` hands over its settings; the alembic command line reads the environment.
    settings = context.config.attributes.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


def _rewrite(change: Callable[[str], str | None]) -> None:
    """Applies `change` to both secrets of every endpoint; None leaves a value as it is."""
    connection = op.get_bind()
    rows = connection.execute(sa.select(endpoints.c.id, endpoints.c.secret, endpoints.c.previous_secret))
    for endpoint_id, secret, previous in rows.all():
        values = {}
        for name, value in (("secret", secret), ("previous_secret", previous)):
            if value is not None and (changed := change(value)) is not None:
                values[name] = changed
        if values:
            connection.execute(endpoints.update().where(endpoints.c.id == endpoint_id).values(**values))


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoint', schema=None) as batch_op:
        batch_op.alter_column('secret',
               existing_type=sa.VARCHAR(length=100),
               type_=sqlmodel.sql.sqltypes.AutoString(length=500),
               existing_nullable=False)
        batch_op.alter_column('previous_secret',
               existing_type=sa.VARCHAR(length=100),
               type_=sqlmodel.sql.sqltypes.AutoString(length=500),
               existing_nullable=True)

    settings = _settings()
    # Only plaintext secrets (whsec_...) are encrypted, so nothing is ever encrypted twice.
    _rewrite(lambda value: webhook_secrets.encrypt(settings, value) if value.startswith(PLAINTEXT_PREFIX) else None)


def downgrade() -> None:
    # Decrypting them would leave working signing keys readable by whoever reads the database or its
    # backups; keeping them encrypted would have the older code sign with the ciphertext, and every
    # receiver refuse every alert. So the operator chooses (services/platform/migrations.py).
    connection = op.get_bind()
    encrypted = connection.execute(
        sa.select(sa.func.count()).select_from(endpoints).where(
            sa.or_(
                ~endpoints.c.secret.startswith(PLAINTEXT_PREFIX),
                ~endpoints.c.previous_secret.startswith(PLAINTEXT_PREFIX),
            )
        )
    ).scalar_one()
    if encrypted:
        raise MigrationRefused(
            f"downgrade below 0007 refused: {encrypted} webhook endpoint(s) hold encrypted signing secrets, "
            "which the schema before 0007 keeps in clear, and no migration writes a secret in clear. "
            "Delete those endpoints first (DELETE /v1/webhook-endpoints/{id}; register them again after "
            "upgrading, and give their receivers the new secrets), or restore a backup taken before 0007"
        )

    with op.batch_alter_table('webhook_endpoint', schema=None) as batch_op:
        batch_op.alter_column('previous_secret',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=500),
               type_=sa.VARCHAR(length=100),
               existing_nullable=True)
        batch_op.alter_column('secret',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=500),
               type_=sa.VARCHAR(length=100),
               existing_nullable=False)
