"""The audit records of reads, written apart from the read.

A read's own transaction writes nothing, so it could run on a read replica. Its records wait in the
session (`audit.defer`); once the route has built its answer, the read's transaction ends and the
records are written in a short transaction of their own (through `audit_session_factory` when an app
sets one, the primary's, else the app's factory), before the answer leaves.

A read whose record can't be written is not answered: 503, logged (the route template and the error's
type, nothing of the patient) and counted in symptrack_audit_write_failures_total. HIPAA's audit
controls (45 CFR 164.312(b)) want every access to be on record; a client that got the data is a client
whose access is in the trail, and a 503 is retried.
"""

from __future__ import annotations

import logging

from fastapi import Request
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.observability import REGISTRY, route_template
from services.accounts import audit
from services.errors import ServiceUnavailable
from services.platform.tracebacks import exception_name

logger = logging.getLogger("symptrack.audit")

READ_METHODS = frozenset({"GET", "HEAD"})

AUDIT_WRITE_FAILURES = Counter(
    "symptrack_audit_write_failures_total",
    "Reads answered 503 because their audit record could not be written",
    registry=REGISTRY,
)


class AuditUnavailable(ServiceUnavailable):
    pass


def is_read(request: Request) -> bool:
    return request.method in READ_METHODS


async def record_after_read(request: Request, session: AsyncSession) -> None:
    """At the end of a read that succeeded: end its transaction, then write its records apart."""
    if not is_read(request):
        return
    rows = audit.take_deferred(session)
    if not rows:
        return
    await session.commit()  # the read's transaction: nothing written in it
    factory: async_sessionmaker[AsyncSession] = (
        getattr(request.app.state, "audit_session_factory", None) or request.app.state.session_factory
    )
    try:
        await audit.write_apart(factory, rows)
    except Exception as exc:
        AUDIT_WRITE_FAILURES.inc()
        logger.error(
            "the audit record of a read could not be written, answered 503: %s %s (%s)",
            request.method,
            route_template(request.scope),
            exception_name(exc),
        )
        raise AuditUnavailable("The access could not be recorded; try again shortly.") from None
