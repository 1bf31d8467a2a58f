"""Delivering outbox events to webhook endpoints: claim, sign, send, record, reschedule.

Claims are leases, and only a live worker keeps one. A claim holds a delivery for
`webhook_lease_seconds` (6 s); the worker renews the leases of all its sends in flight together, one
UPDATE every `webhook_lease_renew_seconds` (2 s), for as long as each send and its recording take (up
to the 15 s send timeout, and more). A worker that stops (kill -9, its machine gone) renews nothing:
within one lease its deliveries are due again and no longer count against their endpoint's sends in
flight (`webhook_endpoint_in_flight`), and the next claim sends them again, with the same
`webhook-id` (a receiver may see one twice: the killed worker's send may have reached it). A live
worker's send is never claimed by another: its lease lapses only if two renewals in a row come late
(the settings refuse a lease shorter than three renewal intervals), and a worker never sends again
what it has in flight itself. Why not liveness records of workers: a lease renewed by the worker that
sends is the same thing per delivery, needs no new table, and a claim reads it as it always did.

The leases compare instants from the workers' clocks: keep the machines' clocks in step (NTP), well
within one renewal interval. PostgreSQL claims with FOR UPDATE SKIP LOCKED (any number of workers);
SQLite's BEGIN IMMEDIATE serializes the claim (one worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.base import utcnow
from models.outbox import OutboxEvent
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.alerting import webhook_secrets
from services.alerting.signing import signature_header
from services.alerting.url_safety import MalformedUrl, UnsafeUrl, pinned_target
from services.alerting.webhook_secrets import WebhookKeyError
from services.database import session_scope
from services.platform import wakeup
from services.platform.process_metrics import WEBHOOK_ATTEMPTS, WEBHOOK_SEND_SECONDS
from services.settings import Settings

logger = logging.getLogger("symptrack.delivery")

# API.md / the issue: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then dead (> 24 h).
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]
JITTER = 0.1  # +-10%, so endpoints that fail together don't retry in lockstep
RESPONSE_KEEP_BYTES = 2048
CLAIM_BATCH = 20
# Sends in flight per worker; per endpoint across workers, `webhook_endpoint_in_flight`: a slow or
# unreachable receiver (up to the 15 s timeout per send) holds at most its own share of the slots.
SEND_CONCURRENCY = 32
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    event_created_at: datetime
    event_data: dict[str, object]
    url: str
    secrets: list[str]  # decrypted, in force: the current one, and the previous one during a rotation
    # Why the secrets could not be decrypted (a key missing from the settings): then nothing is sent.
    key_error: str | None = None


async def claim(
    session: AsyncSession, settings: Settings, now: datetime, limit: int = CLAIM_BATCH
) -> list[Claimed]:
    """Take up to `limit` due deliveries of enabled endpoints, urgent first, and lease them; never
    more than `webhook_endpoint_in_flight` of one endpoint at once (counting those other claims hold), so an
    endpoint with a backlog that answers slowly cannot take every sending slot."""
    due = (
        col(WebhookDelivery.status).in_(("pending", "failed")),
        col(WebhookDelivery.next_attempt_at) <= now,
    )
    leased = col(WebhookDelivery.lease_expires_at) > now
    unleased = or_(
        col(WebhookDelivery.lease_expires_at).is_(None), col(WebhookDelivery.lease_expires_at) <= now
    )
    # In flight: leased and not yet recorded (a recording clears the lease), found through the due index.
    in_flight = (
        select(col(WebhookDelivery.endpoint_id).label("endpoint_id"), func.count().label("sending"))
        .where(*due, leased)
        .group_by(col(WebhookDelivery.endpoint_id))
        .subquery()
    )
    ranked = (
        select(
            col(WebhookDelivery.id).label("id"),
            col(WebhookDelivery.endpoint_id).label("endpoint_id"),
            func.row_number()
            .over(
                partition_by=col(WebhookDelivery.endpoint_id),
                order_by=(col(WebhookDelivery.urgent).desc(), col(WebhookDelivery.next_attempt_at)),
            )
            .label("place"),
        )
        .where(*due, unleased)
        .subquery()
    )
    within_share = (
        select(ranked.c.id)
        .outerjoin(in_flight, in_flight.c.endpoint_id == ranked.c.endpoint_id)
        .where(ranked.c.place + func.coalesce(in_flight.c.sending, 0) <= settings.webhook_endpoint_in_flight)
    )
    statement = (
        select(WebhookDelivery, WebhookEndpoint, OutboxEvent)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .join(OutboxEvent, col(OutboxEvent.id) == col(WebhookDelivery.event_id))
        .where(
            *due,
            unleased,
            col(WebhookEndpoint.enabled),
            col(WebhookDelivery.id).in_(within_share),
        )
        .order_by(col(WebhookDelivery.urgent).desc(), col(WebhookDelivery.next_attempt_at))
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    rows = (await session.execute(statement)).all()
    lease_until = now + timedelta(seconds=settings.webhook_lease_seconds)
    if rows:
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_([delivery.id for delivery, _, _ in rows]))
            .values(lease_expires_at=lease_until, updated_at=now)
        )
    claimed = []
    for delivery, endpoint, event in rows:
        stored = [endpoint.secret]
        if (
            endpoint.previous_secret
            and endpoint.previous_secret_expires_at
            and endpoint.previous_secret_expires_at > now
        ):
            stored.append(endpoint.previous_secret)
        key_error = None
        try:
            secrets = [webhook_secrets.decrypt(settings, secret) for secret in stored]
        except WebhookKeyError as exc:
            # Never sign with a wrong secret: the attempt fails, says why, and retries on schedule.
            secrets, key_error = [], str(exc)
            logger.error("webhook endpoint %s: %s", endpoint.id, exc)
        except Exception as exc:
            # A stored secret no key reads (corrupted): this delivery fails alone, the batch goes on.
            secrets, key_error = [], f"the signing secret could not be read ({type(exc).__name__})"
            logger.error("webhook endpoint %s: %s", endpoint.id, key_error)
        claimed.append(
            Claimed(
                delivery.id,
                event.id,
                event.type,
                event.created_at,
                dict(event.data),
                endpoint.url,
                secrets,
                key_error,
            )
        )
    return claimed


async def renew(
    session: AsyncSession, settings: Settings, delivery_ids: list[uuid.UUID], now: datetime
) -> int:
    """Extend the leases of a worker's sends in flight, in one statement; returns how many it found
    still leased. A delivery already recorded (its lease cleared) is left alone."""
    if not delivery_ids:
        return 0
    renewed = await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_(delivery_ids), col(WebhookDelivery.lease_expires_at).is_not(None))
        .values(lease_expires_at=now + timedelta(seconds=settings.webhook_lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(renewed.rowcount)  # type: ignore[attr-defined]


class Leases:
    """The deliveries one worker has in flight, whose leases it renews together every
    `webhook_lease_renew_seconds` while it has any (a task of its own, which ends when none is left)."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self.held: set[uuid.UUID] = set()
        self.renewing: asyncio.Task[None] | None = None

    def hold(self, delivery_id: uuid.UUID) -> None:
        self.held.add(delivery_id)
        if self.renewing is None or self.renewing.done():
            self.renewing = asyncio.create_task(self._renew_while_held())

    def release(self, delivery_id: uuid.UUID) -> None:
        self.held.discard(delivery_id)

    async def _renew_while_held(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.webhook_lease_renew_seconds
        beat = loop.time()
        while self.held:
            # At a steady pace: a slow renewal does not push the next one back.
            beat += interval
            await asyncio.sleep(max(0.0, beat - loop.time()))
            if not self.held:
                return
            try:
                async with session_scope(self.factory) as session:
                    await renew(session, self.settings, list(self.held), utcnow())
            except Exception as exc:
                # The next beat tries again; two missed in a row and another worker may send these.
                logger.warning("leases of %d deliveries not renewed: %s", len(self.held), type(exc).__name__)

    async def close(self) -> None:
        if self.renewing is not None:
            self.renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.renewing
            self.renewing = None


def body_of(claimed: Claimed) -> str:
    """The exact text we sign and send."""
    payload = {
        "type": claimed.event_type,
        "timestamp": claimed.event_created_at.isoformat(),
        "data": claimed.event_data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None
    retry_after: timedelta | None
    # The delivery can never be sent (its URL cannot be built into a request): dead at once.
    permanent: bool = False
    # Why it failed, when no answer came: one of process_metrics.ATTEMPT_OUTCOMES (the metrics' label).
    failure: str = "not_sent"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def kind(self) -> str:
        if self.status_code is not None:
            return "succeeded" if self.succeeded else "non_2xx"
        return self.failure


def webhook_client(settings: Settings, ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The client sends go through. Each send names the checked address in its URL (see `send`), so:
    no proxy from the environment (a proxy would resolve the name again, and httpcore's proxy tunnel
    ignores `sni_hostname`), and no connection kept for reuse (the pool knows a connection by its
    address only, and would hand it to a request for another name whose certificate it never checked).
    Certificates are verified as before, with SSL_CERT_FILE / SSL_CERT_DIR honoured."""
    return httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        verify=ssl_context or httpx.create_ssl_context(trust_env=True),
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def send(client: httpx.AsyncClient, settings: Settings, claimed: Claimed) -> Outcome:
    """Send one delivery. Never raises (but for cancellation): whatever goes wrong preparing or sending
    it is this delivery's failed attempt, so it can never end the round, the worker or the client. The
    error names the exception's type only: its message may quote the URL (query strings) or data."""
    started = time.perf_counter()
    try:
        return await _send(client, settings, claimed, started)
    except httpx.InvalidURL:
        invalid = "refused: must be a valid URL"
        return Outcome(None, _elapsed_ms(started), invalid, None, None, permanent=True, failure="refused")
    except Exception as exc:
        logger.warning("delivery %s not sent: %s", claimed.delivery_id, type(exc).__name__)
        return Outcome(None, _elapsed_ms(started), f"not sent: {type(exc).__name__}", None, None)


async def _send(client: httpx.AsyncClient, settings: Settings, claimed: Claimed, started: float) -> Outcome:
    if claimed.key_error is not None:
        return Outcome(None, 0, f"not sent: {claimed.key_error}", None, None)
    try:
        target = await pinned_target(claimed.url, settings)
    except MalformedUrl as exc:
        return Outcome(None, 0, f"refused: {exc}", None, None, permanent=True, failure="refused")
    except UnsafeUrl as exc:
        return Outcome(None, 0, f"refused: {exc}", None, None, failure="refused")
    body = body_of(claimed)
    sent_at = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": "symptrack-webhooks/1",
        "webhook-id": str(claimed.event_id),
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header(claimed.secrets, str(claimed.event_id), sent_at, body),
        "host": target.host_header,
    }
    # The connection goes to the address just checked; TLS still sends and verifies the host name.
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    try:
        response = await client.post(
            target.url, content=body.encode(), headers=headers, extensions=extensions
        )
    except httpx.HTTPError as exc:
        return Outcome(None, _elapsed_ms(started), f"{type(exc).__name__}", None, None, failure=_failure(exc))
    latency = _elapsed_ms(started)
    text = response.content[:RESPONSE_KEEP_BYTES].decode("utf-8", errors="replace")
    return Outcome(
        response.status_code, latency, None, text, _retry_after(response.headers.get("retry-after"))
    )


def _failure(exc: httpx.HTTPError) -> str:
    """The class of a send that got no answer: the receiver too slow, or not reachable."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.NetworkError | httpx.ProtocolError):
        return "connection"  # refused, reset, closed before answering
    return "not_sent"


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        return timedelta(seconds=max(0, int(value)))
    except ValueError:
        try:
            return max(timedelta(0), parsedate_to_datetime(value) - utcnow())
        except (TypeError, ValueError):
            return None


def next_attempt(
    step: int, now: datetime, retry_after: timedelta | None, rng: random.Random
) -> datetime | None:
    """When to try again after the attempt at `step` failed; None once the schedule is spent."""
    if step >= len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[step] * (1 + rng.uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, min(retry_after, timedelta(hours=10)))
    return now + delay


async def record(
    session: AsyncSession,
    settings: Settings,
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    rng: random.Random,
) -> None:
    delivery = await session.get_one(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    endpoint = await session.get_one(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=_bounded(outcome.error),
            response_body=outcome.response_body,
        )
    )
    delivery.attempts += 1
    if delivery.status == "succeeded":
        # Sent twice (its lease lapsed while this worker still sent it, and another sent it too), and
        # the other send succeeded: this attempt is kept, and no outcome of it undoes that success.
        session.add(delivery)
        await session.flush()
        return
    delivery.last_status_code = outcome.status_code
    delivery.last_error = _bounded(outcome.error)
    delivery.lease_expires_at = None
    delivery.updated_at = now
    if outcome.succeeded:
        delivery.status = "succeeded"
        endpoint.failing_since = None
    else:
        step, retry_after = delivery.schedule_step, outcome.retry_after
        when = None if outcome.permanent else next_attempt(step, now, retry_after, rng)
        delivery.schedule_step += 1
        if when is None:
            delivery.status = "dead"
        else:
            delivery.status = "failed"
            delivery.next_attempt_at = when
        endpoint.failing_since = endpoint.failing_since or now
        if outcome.permanent:
            _disable(endpoint, f"its URL cannot be sent to ({outcome.error})", now)
        elif outcome.status_code == 410:
            _disable(endpoint, "the receiver answered 410 Gone", now)
        elif now - endpoint.failing_since >= timedelta(days=settings.webhook_disable_after_days):
            _disable(endpoint, f"every delivery failed for {settings.webhook_disable_after_days} days", now)
    session.add_all([delivery, endpoint])
    await session.flush()


def _bounded(error: str | None) -> str | None:
    """An error fits its column (500): a longer one must not make the outcome unrecordable."""
    return None if error is None else error[:500]


def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    if endpoint.enabled:
        logger.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = now


async def _deliver(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    http: httpx.AsyncClient,
    claimed: Claimed,
    rng: random.Random,
) -> None:
    """Send one claimed delivery and record its outcome. Never raises (but for cancellation): a
    recording that fails leaves this delivery's lease to run out, so it is sent again (same
    webhook-id), and no other delivery's outcome is lost with it."""
    outcome = await send(http, settings, claimed)
    _count(outcome)
    try:
        async with session_scope(factory) as session:
            await record(session, settings, claimed, outcome, utcnow(), rng)
    except Exception as exc:
        logger.error("delivery %s: its outcome was not recorded: %s", claimed.delivery_id, type(exc).__name__)
        return
    level = logging.INFO if outcome.succeeded else logging.WARNING
    logger.log(level, "delivery %s: %s", claimed.delivery_id, outcome.status_code or outcome.error)


def _count(outcome: Outcome) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome.kind).inc()
    if outcome.kind in ("succeeded", "non_2xx", "timeout", "connection"):  # it went out
        WEBHOOK_SEND_SECONDS.observe(outcome.latency_ms / 1000)


async def deliver_due(
    factory: async_sessionmaker[AsyncSession], settings: Settings, client: httpx.AsyncClient | None = None
) -> int:
    """One round: claim what is due, send it (concurrently), record each outcome, and return how many
    once all are recorded."""
    rng = random.Random()  # noqa: S311 - jitter, not security
    async with session_scope(factory) as session:
        batch = await claim(session, settings, utcnow())
    if not batch:
        return 0
    owned = client is None
    http = client or webhook_client(settings)
    limiter = asyncio.Semaphore(SEND_CONCURRENCY)
    leases = Leases(factory, settings)

    async def one(claimed: Claimed) -> None:
        leases.hold(claimed.delivery_id)
        try:
            async with limiter:
                await _deliver(factory, settings, http, claimed, rng)
        finally:
            leases.release(claimed.delivery_id)

    try:
        await asyncio.gather(*(one(c) for c in batch))
    finally:
        await leases.close()
        if owned:
            await http.aclose()
    return len(batch)


def _release(leases: Leases, delivery_id: uuid.UUID, _: asyncio.Task[None]) -> None:
    leases.release(delivery_id)


class DeliveryJob:
    """The worker's delivery job, one per worker. Each send runs as a task of its own, and a run
    returns as soon as nothing more is due, while sends are still in flight: a receiver that answers
    slowly (or not at all, until the timeout) holds one of SEND_CONCURRENCY slots, never the claim
    of the next urgent alert. A run waits only while every slot is taken."""

    def __init__(self, concurrency: int = SEND_CONCURRENCY) -> None:
        self.concurrency = concurrency
        self.in_flight: set[asyncio.Task[None]] = set()
        self.client: httpx.AsyncClient | None = None
        self.rng = random.Random()  # noqa: S311 - jitter, not security
        self.leases: Leases | None = None

    async def __call__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> int:
        leases = self.leases = self.leases or Leases(factory, settings)
        handled = 0
        while True:
            free = self.concurrency - len(self.in_flight)
            if free <= 0:
                await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            limit = min(free, CLAIM_BATCH)
            async with session_scope(factory) as session:
                batch = await claim(session, settings, utcnow(), limit)
            if batch and (self.client is None or self.client.is_closed):
                self.client = webhook_client(settings)
            for claimed in batch:
                assert self.client is not None
                if claimed.delivery_id in leases.held:
                    continue  # in flight here already (its lease lapsed): the claim renewed it
                leases.hold(claimed.delivery_id)
                task = asyncio.create_task(self._deliver(factory, settings, self.client, claimed))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
                # When the task ends, however it ends: a delivery never held for good.
                task.add_done_callback(functools.partial(_release, leases, claimed.delivery_id))
            handled += len(batch)
            if len(batch) < limit:
                return handled

    async def _deliver(
        self,
        factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        http: httpx.AsyncClient,
        claimed: Claimed,
    ) -> None:
        await _deliver(factory, settings, http, claimed, self.rng)
        # Its slot is free: claim again now, not at the next poll, in case a delivery was held back.
        wakeup.wake_here()

    async def drain(self) -> None:
        """When the worker stops: let every send in flight finish and be recorded (each is bounded by
        the send timeout), then close the client."""
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        if self.leases is not None:
            await self.leases.close()
        if self.client is not None:
            await self.client.aclose()
            self.client = None
