"""One bad endpoint holds up no other: a URL that can never be sent to is refused when saved and dead at
once when found at send time; whatever fails for one delivery is that delivery's failed attempt; and a
receiver that answers slowly never delays the alerts to the others. Real receivers on loopback."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlmodel import col

from api.app import create_app
from models.base import utcnow
from models.webhooks import WebhookDelivery, WebhookEndpoint
from services.alerting import delivery, outbox
from services.alerting.delivery import RETRY_DELAYS, deliver_due
from services.alerting.signing import signature_header
from services.database import session_scope
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import check_in, day
from tests.receiver import Receiver, received_at_least
from tests.world import World, build_world

# What an operator's clinic saved, and the server accepted until now: httpx cannot build a request.
UNSENDABLE = [
    "http://127.0.0.1:abc/",
    "http://127.0.0.1/a\x7fb",
    "http://127.0.0.1:-1/",
    "http://127.0.0.1:99999/",
]


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Loopback receivers: http and private addresses allowed, so only the URL's form is judged.
    return settings_for(database_url, webhook_allow_http=True, webhook_allow_private_networks=True)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started = [Receiver().start() for _ in range(12)]
    yield started
    for receiver in started:
        receiver.stop()


async def _endpoint(client: httpx.AsyncClient, world: World, url: str) -> httpx.Response:
    return await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": url, "events": ["flag.created"], "min_severity": "urgent"},
    )


async def _endpoints_for(client: httpx.AsyncClient, world: World, receivers: list[Receiver]) -> list[str]:
    ids = []
    for receiver in receivers:
        response = await _endpoint(client, world, receiver.url)
        assert response.status_code == 201, response.text
        receiver.secrets.append(response.json()["secret"])
        ids.append(response.json()["id"])
    return ids


async def _by_endpoint(app: FastAPI) -> dict[str, list[WebhookDelivery]]:
    async with session_scope(app.state.session_factory) as session:
        rows = (
            await session.execute(select(WebhookDelivery).order_by(col(WebhookDelivery.created_at)))
        ).scalars()
        found: dict[str, list[WebhookDelivery]] = {}
        for row in rows:
            found.setdefault(str(row.endpoint_id), []).append(row)
        return found


def _assert_url_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "url"]]


@pytest.mark.one_database
@pytest.mark.parametrize(
    "url",
    [
        *UNSENDABLE,
        "http://127.0.0.1:0/hook",
        "http://127.0.0.1:/hook",  # an empty port
        "http://127.0.0.1:+80/hook",
        "https://[93.184.216.34]/",  # an IPv4 address in IPv6 brackets
        "https://[::1/",
        "https://[::1]x/",
        "https://[v1.fe]/hook",  # an IPvFuture literal
        "https://[fe80::1%25eth0]/hook",  # a zone: meaningless outside this machine
        "https:///hook",  # no host
        "https://:443/hook",
        "https://a..b/hook",
        "https://-a.example/hook",
        "https://ex%20ample.com/hook",
        "https://example.com/a b",
        "https://example.com/a\tb",
        "https://example.com/\u200bhook",  # a zero-width space
        " https://example.com/hook",
        "https://example.com/hook#section",  # never sent: the receiver would get another URL
        "https://example.com/" + "a" * 1990,  # over 2000 characters
    ],
)
async def test_a_url_that_can_never_be_sent_to_is_refused_when_saved(
    client: httpx.AsyncClient, world: World, url: str
) -> None:
    _assert_url_refused(await _endpoint(client, world, url))
    created = await _endpoint(client, world, "http://127.0.0.1:8080/hook")
    patched = await client.patch(
        f"/v1/webhook-endpoints/{created.json()['id']}", headers=world["admin_a"].headers, json={"url": url}
    )
    _assert_url_refused(patched)


@pytest.mark.one_database
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:65535/hook?clinic=7&x=%20",
        "http://127.0.0.1:1/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/hook",
        "https://bücher.example/alerts/é",  # a name and a path beyond ASCII, encoded when sent
        "https://alerts.example.com./hook",  # a fully qualified name
        "https://on_call.example.com/hook",
    ],
)
async def test_a_well_formed_url_is_still_accepted(client: httpx.AsyncClient, world: World, url: str) -> None:
    response = await _endpoint(client, world, url)
    assert response.status_code == 201, response.text


async def test_unsendable_urls_go_dead_at_once_and_hold_up_no_other_delivery(
    app: FastAPI, client: httpx.AsyncClient, world: World, receivers: list[Receiver]
) -> None:
    ids = await _endpoints_for(client, world, receivers)
    bad = ids[: len(UNSENDABLE)]
    async with session_scope(app.state.session_factory) as session:  # saved before the check existed
        for endpoint_id, url in zip(bad, UNSENDABLE, strict=True):
            await session.execute(
                update(WebhookEndpoint)
                .where(col(WebhookEndpoint.id) == uuid.UUID(endpoint_id))
                .values(url=url)
            )
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert await deliver_due(app.state.session_factory, app.state.settings) == 12
    for receiver in receivers[len(UNSENDABLE) :]:
        assert len(receiver.received) == 1 and receiver.received[0].verified_with
    deliveries = await _by_endpoint(app)
    for endpoint_id in bad:
        [dead] = deliveries[endpoint_id]
        assert dead.status == "dead" and dead.attempts == 1, "not retried forever"
        assert dead.last_error is not None and dead.last_error.startswith("refused: ")
        assert "127.0.0.1" not in dead.last_error
    assert {d[0].status for e, d in deliveries.items() if e not in bad} == {"succeeded"}
    shown = await client.get(f"/v1/webhook-endpoints/{bad[0]}", headers=world["admin_a"].headers)
    assert shown.json()["enabled"] is False and "cannot be sent to" in shown.json()["disabled_reason"]
    # Nothing is left to send: no lease runs out and sends anything again.
    async with session_scope(app.state.session_factory) as session:
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert await deliver_due(app.state.session_factory, app.state.settings) == 0


async def test_any_error_preparing_one_send_is_that_deliverys_failed_attempt(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    receivers: list[Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = await _endpoints_for(client, world, receivers[:3])

    def signature(secrets: list[str], msg_id: str, at: object, body: str) -> str:
        if secrets == receivers[0].secrets:  # the first endpoint's: its signing fails
            raise KeyError("a secret or the patient id 1234")  # its message never reaches the record
        return signature_header(secrets, msg_id, at, body)  # type: ignore[arg-type]

    monkeypatch.setattr(delivery, "signature_header", signature)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert await deliver_due(app.state.session_factory, app.state.settings) == 3
    assert [len(r.received) for r in receivers[:3]] == [0, 1, 1]
    deliveries = await _by_endpoint(app)
    [failed] = deliveries[ids[0]]
    assert failed.status == "failed" and failed.attempts == 1 and failed.last_error == "not sent: KeyError"
    assert failed.next_attempt_at - utcnow() <= RETRY_DELAYS[0] * 1.1, "retried on the schedule"
    assert [deliveries[i][0].status for i in ids[1:]] == ["succeeded", "succeeded"]


async def test_an_outcome_that_cannot_be_recorded_loses_no_other(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    receivers: list[Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = await _endpoints_for(client, world, receivers[:3])
    real_record = delivery.record
    unlucky: list[str] = []

    async def record(session: object, settings: Settings, claimed: delivery.Claimed, *rest: object) -> None:
        if not unlucky:
            unlucky.append(claimed.url)
            raise RuntimeError("the database went away")
        await real_record(session, settings, claimed, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(delivery, "record", record)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert await deliver_due(app.state.session_factory, app.state.settings) == 3
    deliveries = await _by_endpoint(app)
    statuses = sorted(deliveries[i][0].status for i in ids)
    assert statuses == ["pending", "succeeded", "succeeded"]
    # The unrecorded one keeps its lease, and is sent again (same webhook-id) once the lease runs out.
    async with session_scope(app.state.session_factory) as session:
        await session.execute(
            update(WebhookDelivery).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await deliver_due(app.state.session_factory, app.state.settings) == 1
    again = next(r for r in receivers[:3] if r.url == unlucky[0])
    assert len(again.received) == 2 and again.received[0].webhook_id == again.received[1].webhook_id
    assert {d[0].status for d in (await _by_endpoint(app)).values()} == {"succeeded"}


async def _all_recorded(app: FastAPI, count: int) -> None:
    """Until every delivery's outcome is recorded (bounded by the caller's timeouts)."""
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        found = [d for ds in (await _by_endpoint(app)).values() for d in ds]
        if len(found) == count and all(d.attempts >= 1 for d in found):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not every outcome was recorded")


@pytest.fixture
async def live_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its in-process worker running, as `symptrack serve` runs it."""
    application = create_app(settings, run_worker=True)
    async with application.router.lifespan_context(application):
        yield application


async def test_a_slow_receiver_delays_no_alert_to_the_others(
    live_app: FastAPI, receivers: list[Receiver]
) -> None:
    release = threading.Event()

    def held() -> int:
        release.wait(20)  # answers only when the test says so (a receiver taking 10 s)
        return 200

    slow, gone, good = receivers[0], receivers[1], receivers[2:]
    slow.script = [held]
    transport = httpx.ASGITransport(app=live_app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            world = await build_world(live_app)
            await _endpoints_for(client, world, receivers)
            gone.stop()  # unreachable: the connection is refused
            await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
            for receiver in good:
                await received_at_least(receiver, 1, within=10)
            await received_at_least(slow, 1, within=10)
            assert not release.is_set()
            # A second urgent alert while the slow receiver still holds the first: no round waits for it.
            await check_in(client, world["patient_a2"], day(0), red_flags={"breathing_trouble": True})
            for receiver in good:
                await received_at_least(receiver, 2, within=10)
            assert not release.is_set() and slow.received and len(good) == 10
            release.set()
            await received_at_least(slow, 2, within=10)
            await _all_recorded(live_app, 12 * 2)
    finally:
        release.set()
    statuses = {e: sorted(d.status for d in found) for e, found in (await _by_endpoint(live_app)).items()}
    assert sorted(statuses.values()) == [["failed", "failed"]] + [["succeeded", "succeeded"]] * 11
    for receiver in good:
        first, second = receiver.received
        assert first.webhook_id != second.webhook_id and first.verified_with and second.verified_with


async def test_an_endpoint_with_a_slow_backlog_takes_only_its_share_of_the_slots(
    live_app: FastAPI, receivers: list[Receiver]
) -> None:
    release = threading.Event()

    def held() -> int:
        release.wait(20)
        return 200

    slow, good = receivers[0], receivers[1]
    backlog = delivery.SEND_CONCURRENCY + 8  # more than every slot of the worker
    slow.script = [held] * backlog
    transport = httpx.ASGITransport(app=live_app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            world = await build_world(live_app)
            slow_id, good_id = await _endpoints_for(client, world, [slow, good])
            async with session_scope(live_app.state.session_factory) as session:
                endpoint = await session.get_one(WebhookEndpoint, uuid.UUID(slow_id))
                for _ in range(backlog):
                    await outbox.ping_event(session, endpoint)
            await received_at_least(slow, live_app.state.settings.webhook_endpoint_in_flight, within=10)
            ping = await client.post(
                f"/v1/webhook-endpoints/{good_id}/ping", headers=world["admin_a"].headers
            )
            assert ping.status_code == 202
            await received_at_least(good, 1, within=10)
            assert not release.is_set()
            assert len(slow.received) == live_app.state.settings.webhook_endpoint_in_flight, (
                "the rest wait for its share"
            )
            release.set()
            await received_at_least(slow, backlog, within=10)
            await _all_recorded(live_app, backlog + 1)
    finally:
        release.set()
    assert len({r.webhook_id for r in slow.received}) == backlog == len(slow.received)
