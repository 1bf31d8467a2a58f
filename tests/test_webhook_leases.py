"""Leases: a live worker renews the leases of its sends in flight, so no other worker takes them however
long they take; a stopped worker renews nothing, so its deliveries stop counting against their
endpoint's share and are claimed again within one lease. Both databases."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlmodel import col

from models.base import utcnow
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.alerting import outbox, webhook_secrets
from services.alerting.delivery import DeliveryJob, Leases, Outcome, claim, record, renew
from services.alerting.signing import new_secret
from services.database import session_scope
from services.settings import Settings
from tests.databases import settings_for
from tests.receiver import Receiver, received_at_least
from tests.world import World

LEASE = timedelta(seconds=6)
KEY = "k" * 40


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A small share per endpoint, so a claim shows what it counts as in flight.
    return settings_for(
        database_url,
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_endpoint_in_flight=2,
    )


async def _pings(app: FastAPI, world: World, receiver: Receiver | None, count: int) -> list[uuid.UUID]:
    """An endpoint of organization A (at the receiver, else a port nobody answers) with `count`
    deliveries due, oldest first."""
    secret = new_secret()
    if receiver is not None:
        receiver.secrets.append(secret)
    async with session_scope(app.state.session_factory) as session:
        endpoint = WebhookEndpoint(
            organization_id=world.organizations["A"],
            url=receiver.url if receiver is not None else "http://127.0.0.1:9/hook",
            events=["flag.created"],
            min_severity="urgent",
            secret=webhook_secrets.encrypt(app.state.settings, secret),
        )
        session.add(endpoint)
        await session.flush()
        return [(await outbox.ping_event(session, endpoint))[1].id for _ in range(count)]


async def _claim(app: FastAPI, at: datetime) -> list[uuid.UUID]:
    async with session_scope(app.state.session_factory) as session:
        return [c.delivery_id for c in await claim(session, app.state.settings, at)]


async def _renew(app: FastAPI, ids: list[uuid.UUID], at: datetime) -> int:
    async with session_scope(app.state.session_factory) as session:
        return await renew(session, app.state.settings, ids, at)


async def _lease_of(app: FastAPI, delivery_id: uuid.UUID) -> datetime | None:
    async with session_scope(app.state.session_factory) as session:
        return (await session.get_one(WebhookDelivery, delivery_id)).lease_expires_at


async def test_a_lease_not_renewed_stops_counting_once_it_runs_out(app: FastAPI, world: World) -> None:
    first, second, third = await _pings(app, world, None, 3)
    now = utcnow()
    assert await _claim(app, now) == [first, second]  # the endpoint's share: 2 in flight
    # The worker that holds them stops: nothing renews them. Until they run out they count...
    assert await _claim(app, now + LEASE - timedelta(milliseconds=1)) == []
    # ... and then not at all: both are due again (the same deliveries, so the same webhook-id), first.
    assert await _claim(app, now + LEASE) == [first, second]
    assert await _lease_of(app, third) is None


async def test_a_renewed_lease_keeps_the_delivery_out_of_other_claims(app: FastAPI, world: World) -> None:
    first, second, third = await _pings(app, world, None, 3)
    now = utcnow()
    assert await _claim(app, now) == [first, second]
    assert await _renew(app, [first, second], now + timedelta(seconds=4)) == 2
    # Past the claim's own lease, within the renewed one: still held, and still the endpoint's share.
    assert await _claim(app, now + LEASE + timedelta(seconds=1)) == []
    assert await _lease_of(app, first) == now + timedelta(seconds=4) + LEASE
    # Renewed no more (the worker stopped): claimed again once the renewed lease runs out.
    assert await _claim(app, now + timedelta(seconds=4) + LEASE) == [first, second]
    assert await _lease_of(app, third) is None


async def test_a_renewal_leaves_a_recorded_delivery_alone(app: FastAPI, world: World) -> None:
    [only] = await _pings(app, world, None, 1)
    now = utcnow()
    assert await _claim(app, now) == [only]
    async with session_scope(app.state.session_factory) as session:  # its outcome recorded: no lease
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == only)
            .values(status="succeeded", lease_expires_at=None)
        )
    assert await _renew(app, [only], now + timedelta(seconds=2)) == 0
    assert await _lease_of(app, only) is None


@pytest.fixture
def short_lease(database_url: str) -> Settings:
    """A lease of 0.75 s renewed every 0.25 s, so a send of a few seconds outlasts many leases."""
    return settings_for(
        database_url,
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_lease_seconds=0.75,
        webhook_lease_renew_seconds=0.25,
    )


async def test_a_send_longer_than_many_leases_is_taken_by_no_other_worker(
    app: FastAPI, world: World, receiver: Receiver, short_lease: Settings
) -> None:
    answer = threading.Event()

    def held() -> int:
        answer.wait(20)
        return 200

    receiver.default = held
    [only] = await _pings(app, world, receiver, 1)
    job = DeliveryJob()
    factory = app.state.session_factory
    try:
        assert await job(factory, short_lease) == 1
        await received_at_least(receiver, 1, within=10)
        claimed_at = utcnow()
        # Another worker claims over and over while the send is held for 3 leases: never this one.
        while utcnow() < claimed_at + 3 * timedelta(seconds=short_lease.webhook_lease_seconds):
            async with session_scope(factory) as session:
                assert await claim(session, short_lease, utcnow()) == []
            await asyncio.sleep(0.05)
        lease = await _lease_of(app, only)
        assert lease is not None and lease > utcnow()
    finally:
        answer.set()
        await job.drain()
    assert len(receiver.received) == 1 and receiver.received[0].verified_with
    async with session_scope(factory) as session:
        delivery = await session.get_one(WebhookDelivery, only)
    assert (delivery.status, delivery.attempts, delivery.lease_expires_at) == ("succeeded", 1, None)
    assert job.leases is not None and not job.leases.held and job.leases.renewing is None


async def test_a_worker_never_sends_again_what_it_has_in_flight(
    app: FastAPI, world: World, receiver: Receiver, settings: Settings
) -> None:
    answer = threading.Event()

    def held() -> int:
        answer.wait(20)
        return 200

    receiver.default = held
    [only] = await _pings(app, world, receiver, 1)
    job = DeliveryJob()
    factory = app.state.session_factory
    try:
        assert await job(factory, settings) == 1
        await received_at_least(receiver, 1, within=10)
        # Its lease lapsed (say the renewals came late): the worker's next claim takes it again...
        async with session_scope(factory) as session:
            await session.execute(
                update(WebhookDelivery).values(lease_expires_at=utcnow() - timedelta(seconds=1))
            )
        assert await job(factory, settings) == 1
        # ... and holds it again, but sends it no second time.
        assert len(job.in_flight) == 1
        lease = await _lease_of(app, only)
        assert lease is not None and lease > utcnow()
    finally:
        answer.set()
        await job.drain()
    assert len(receiver.received) == 1 and receiver.received[0].verified_with
    async with session_scope(factory) as session:
        statuses = [d.status for d in (await session.execute(select(WebhookDelivery))).scalars()]
    assert statuses == ["succeeded"]


async def test_the_renewals_stop_when_nothing_is_in_flight(app: FastAPI, short_lease: Settings) -> None:
    leases = Leases(app.state.session_factory, short_lease)
    leases.hold(uuid.uuid4())
    renewing = leases.renewing
    assert renewing is not None and not renewing.done()
    leases.release(next(iter(leases.held)))
    await asyncio.wait_for(renewing, timeout=5)
    await leases.close()


@pytest.mark.parametrize(("lease", "renew"), [(5.9, 2.0), (1.0, 0.5), (0.2, 0.1)])
def test_a_lease_shorter_than_three_renewals_is_refused(lease: float, renew: float) -> None:
    with pytest.raises(ValidationError, match=r"SYMPTRACK_WEBHOOK_LEASE_SECONDS .* at least 3 times"):
        Settings(
            _env_file=None, secret_key=KEY, webhook_lease_seconds=lease, webhook_lease_renew_seconds=renew
        )  # type: ignore[call-arg]


def test_the_lease_settings_by_default() -> None:
    settings = Settings(_env_file=None, secret_key=KEY)  # type: ignore[call-arg]
    assert settings.webhook_timeout_seconds == 15
    assert (settings.webhook_lease_seconds, settings.webhook_lease_renew_seconds) == (6, 2)
    assert settings.webhook_endpoint_in_flight == 12
    shortest = Settings(
        _env_file=None, secret_key=KEY, webhook_lease_seconds=0.3, webhook_lease_renew_seconds=0.1
    )  # type: ignore[call-arg]
    assert shortest.webhook_lease_seconds == 0.3


async def test_a_failure_recorded_after_a_success_undoes_nothing(app: FastAPI, world: World) -> None:
    """Two sends of one delivery (a lease that lapsed while its worker still sent): whichever is
    recorded last, a success stands and nothing is sent again."""
    [only] = await _pings(app, world, None, 1)
    settings = app.state.settings
    now = utcnow()
    async with session_scope(app.state.session_factory) as session:
        [claimed] = await claim(session, settings, now)
    rng = random.Random(1)  # noqa: S311 - jitter, not security
    sent = Outcome(200, 5, None, "ok", None)
    failed = Outcome(500, 5, None, "no", None)
    for outcome in (sent, failed):
        async with session_scope(app.state.session_factory) as session:
            await record(session, settings, claimed, outcome, utcnow(), rng)
    async with session_scope(app.state.session_factory) as session:
        delivery = await session.get_one(WebhookDelivery, only)
        endpoint = await session.get_one(WebhookEndpoint, delivery.endpoint_id)
        attempts = (await session.execute(select(WebhookAttempt))).scalars().all()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 2, 200)
    assert delivery.lease_expires_at is None and endpoint.failing_since is None
    assert sorted(a.status_code or 0 for a in attempts) == [200, 500]
    assert await _claim(app, utcnow() + timedelta(days=2)) == []
