"""Webhook delivery to a real receiver on loopback that verifies every signature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from api.app import create_app
from models.base import utcnow
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.alerting.delivery import RETRY_DELAYS, deliver_due
from services.database import session_scope
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import check_in, day
from tests.receiver import Receiver, received_at_least
from tests.world import World, build_world


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url, webhook_allow_http=True, webhook_allow_private_networks=True)


async def _endpoint(client: httpx.AsyncClient, world: World, receiver: Receiver, **fields: object) -> dict:
    body = {
        "url": receiver.url,
        "events": ["flag.created", "flag.escalated"],
        "min_severity": "urgent",
        **fields,
    }
    response = await client.post("/v1/webhook-endpoints", headers=world["admin_a"].headers, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    receiver.secrets.append(created["secret"])
    return created  # type: ignore[no-any-return]


async def _deliveries(app: FastAPI) -> list[WebhookDelivery]:
    async with session_scope(app.state.session_factory) as session:
        return list(
            (await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.created_at))).scalars()
        )


async def _make_due(app: FastAPI) -> None:
    """Let the retry delay pass."""
    async with session_scope(app.state.session_factory) as session:
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


async def _round(app: FastAPI) -> int:
    return await deliver_due(app.state.session_factory, app.state.settings)


@pytest.fixture
async def live_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its in-process worker running, as `symptrack serve` runs it."""
    application = create_app(settings, run_worker=True)
    async with application.router.lifespan_context(application):
        yield application


async def test_an_urgent_check_in_reaches_the_receiver_verified(
    live_app: FastAPI, receiver: Receiver
) -> None:
    transport = httpx.ASGITransport(app=live_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        world = await build_world(live_app)
        await _endpoint(client, world, receiver)
        answer = await check_in(
            client, world["patient_a"], day(0), red_flags={"breathing_trouble": True}, note="private words"
        )
        [request] = await received_at_least(receiver, 1, within=10)
    assert request.verified_with == receiver.secrets
    payload = request.payload
    assert payload["type"] == "flag.created"
    assert payload["data"]["flag"]["id"] == answer["flags"][0]["id"]
    assert payload["data"]["flag"]["severity"] == "urgent"
    assert payload["data"]["patient_id"] == str(world["patient_a"].patient_id)
    assert "private" not in request.body.decode() and "@" not in request.body.decode()
    assert set(payload) == {"type", "timestamp", "data"}


async def test_only_subscribed_severities_are_sent(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    await _endpoint(client, world, receiver, min_severity="urgent")
    await check_in(client, world["patient_a"], day(0), red_flags={"fall": True})  # high
    assert await _deliveries(app) == []
    other = Receiver().start()
    try:
        await _endpoint(client, world, other, min_severity="routine", events=["flag.created"])
        await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})  # urgent: both
        assert len(await _deliveries(app)) == 2
    finally:
        other.stop()


async def test_500_twice_then_200_arrives_on_the_third_attempt_with_the_same_id(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    receiver.script = [500, 500]
    endpoint = await _endpoint(client, world, receiver)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert await _round(app) == 1
    [delivery] = await _deliveries(app)
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.last_status_code == 500
    wait = delivery.next_attempt_at - utcnow()
    assert RETRY_DELAYS[0] * 0.85 < wait <= RETRY_DELAYS[0] * 1.1
    assert await _round(app) == 0  # not due yet
    await _make_due(app)
    await _round(app)
    [delivery] = await _deliveries(app)
    assert delivery.status == "failed" and delivery.attempts == 2
    assert RETRY_DELAYS[1] * 0.85 < delivery.next_attempt_at - utcnow() <= RETRY_DELAYS[1] * 1.1
    await _make_due(app)
    await _round(app)
    requests = receiver.wait_for(3)
    assert len({r.webhook_id for r in requests}) == 1 and all(r.verified_with for r in requests)
    listed = await client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=world["admin_a"].headers
    )
    [shown] = listed.json()["items"]
    assert shown["status"] == "succeeded" and shown["attempts"] == 3 and shown["last_status_code"] == 200
    assert shown["event_id"] == requests[0].webhook_id and shown["event_type"] == "flag.created"
    async with session_scope(app.state.session_factory) as session:
        attempts = list((await session.execute(select(WebhookAttempt))).scalars())
    assert sorted(a.status_code or 0 for a in attempts) == [200, 500, 500]
    assert all(a.response_body and a.response_body.startswith("status") for a in attempts)


async def test_a_receiver_that_is_down_gets_the_event_once_it_is_back(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    await _endpoint(client, world, receiver)
    port = receiver.port
    receiver.stop()
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    await _round(app)
    [delivery] = await _deliveries(app)
    assert delivery.status == "failed" and delivery.last_status_code is None and delivery.last_error
    receiver.start(port)
    await _make_due(app)
    await _round(app)
    assert len(receiver.wait_for(1)) == 1
    assert (await _deliveries(app))[0].status == "succeeded"


async def test_retry_after_is_honoured(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    from services.alerting.delivery import _retry_after

    assert _retry_after("120") == timedelta(seconds=120)
    assert _retry_after(None) is None and _retry_after("soon") is None


async def test_the_schedule_ends_in_dead_and_a_manual_retry_sends_again(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    receiver.default = 503
    await _endpoint(client, world, receiver)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    for _ in range(len(RETRY_DELAYS) + 1):
        await _make_due(app)
        await _round(app)
    [delivery] = await _deliveries(app)
    assert delivery.status == "dead" and delivery.attempts == len(RETRY_DELAYS) + 1
    total = sum(RETRY_DELAYS, timedelta()) * 0.9
    assert total >= timedelta(hours=24), "retries last at least 24 hours"
    receiver.default = 200
    retried = await client.post(
        f"/v1/webhook-deliveries/{delivery.id}/retry", headers=world["admin_a"].headers
    )
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    await _round(app)
    assert (await _deliveries(app))[0].status == "succeeded"
    again = await client.post(f"/v1/webhook-deliveries/{delivery.id}/retry", headers=world["admin_a"].headers)
    assert again.status_code == 409


async def test_410_disables_the_endpoint(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    receiver.script = [410]
    endpoint = await _endpoint(client, world, receiver)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    await _round(app)
    shown = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=world["admin_a"].headers)
    ).json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    await _make_due(app)
    assert await _round(app) == 0  # nothing is sent to a disabled endpoint
    enabled = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=world["admin_a"].headers, json={"enabled": True}
    )
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None


async def test_five_days_of_failure_disable_the_endpoint(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    receiver.default = 500
    endpoint = await _endpoint(client, world, receiver)
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    await _round(app)
    async with session_scope(app.state.session_factory) as session:
        await session.execute(
            update(WebhookEndpoint).values(failing_since=utcnow() - timedelta(days=5, minutes=1))
        )
    await _make_due(app)
    await _round(app)
    shown = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=world["admin_a"].headers)
    ).json()
    assert shown["enabled"] is False and "5 days" in shown["disabled_reason"]


async def test_rotation_signs_with_both_secrets_for_24_hours(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    endpoint = await _endpoint(client, world, receiver)
    old_secret = endpoint["secret"]
    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=world["admin_a"].headers
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    receiver.secrets = [new_secret]
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    await _round(app)
    [request] = receiver.wait_for(1)
    assert request.verified_with == [new_secret]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    receiver.secrets = [old_secret]
    from standardwebhooks import Webhook

    Webhook(old_secret).verify(request.body, request.headers)  # a receiver still on the old one verifies too
    # After 24 hours only the new secret signs.
    async with session_scope(app.state.session_factory) as session:
        await session.execute(
            update(WebhookEndpoint).values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )
    await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/ping", headers=world["admin_a"].headers)
    await _round(app)
    ping = receiver.wait_for(2)[1]
    assert ping.payload["type"] == "webhook.ping"
    assert len(ping.headers["webhook-signature"].split(" ")) == 1


async def test_endpoint_management(client: httpx.AsyncClient, world: World, receiver: Receiver) -> None:
    admin = world["admin_a"].headers
    endpoint = await _endpoint(client, world, receiver, description="on-call pager")
    shown = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)
    assert "secret" not in shown.json() and shown.json()["description"] == "on-call pager"
    listed = await client.get("/v1/webhook-endpoints", headers=admin)
    assert [e["id"] for e in listed.json()] == [endpoint["id"]] and "secret" not in listed.text
    assert (await client.get("/v1/webhook-endpoints", headers=world["provider_a"].headers)).status_code == 403
    assert (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=world["provider_a"].headers)
    ).status_code == 404
    assert (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=world["admin_b"].headers)
    ).status_code == 404
    patched = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        headers=admin,
        json={"min_severity": "high", "events": ["flag.escalated"]},
    )
    assert patched.json()["min_severity"] == "high" and patched.json()["events"] == ["flag.escalated"]
    bad = await client.post(
        "/v1/webhook-endpoints", headers=admin, json={"url": receiver.url, "events": ["x"]}
    )
    assert bad.status_code == 422
    assert (await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)).status_code == 404
