"""Tables and schemas. Importing this package registers every table on SQLModel.metadata."""

from models import accounts, audit, auth, entries, flags, outbox, regimens, webhooks
from models.base import metadata

__all__ = ["accounts", "audit", "auth", "entries", "flags", "metadata", "outbox", "regimens", "webhooks"]
