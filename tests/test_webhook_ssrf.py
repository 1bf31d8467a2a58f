"""Endpoint URLs: https only, never our own network, unless the operator's settings allow it;
checked when saved and again before every send."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.alerting.delivery import deliver_due
from services.database import session_scope
from tests.flag_helpers import check_in, day
from tests.world import World

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database


@pytest.mark.parametrize(
    "url",
    [
        "http://alerts.example.com/hook",  # plain http
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata, link-local
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[2002:7f00:1::]/hook",  # 6to4 for 127.0.0.1
        "https://[2002:a01:203::1]/hook",  # 6to4 for 10.1.2.3
        "https://[2002:a9fe:a9fe::]/latest/meta-data",  # 6to4 for 169.254.169.254
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "https://[64:ff9b::7f00:1]/hook",  # NAT64 for 127.0.0.1
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 for 169.254.169.254
        "https://[64:ff9b:1::a01:203]/hook",  # local-use NAT64 prefix
        "https://0.0.0.0/hook",
        "ftp://alerts.example.com/hook",
        "https://user:pass@alerts.example.com/hook",
        "not a url",
    ],
)
async def test_unsafe_urls_are_refused_when_saved(client: httpx.AsyncClient, world: World, url: str) -> None:
    response = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": url, "events": ["flag.created"], "min_severity": "urgent"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "url"]


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hook",
        "https://[2002:5db8:d70e::]/hook",  # 6to4 for 93.184.215.14
        "https://[64:ff9b::5db8:d70e]/hook",  # NAT64 for 93.184.215.14 (IPv6-only networks with DNS64)
    ],
)
async def test_a_public_https_address_is_accepted(client: httpx.AsyncClient, world: World, url: str) -> None:
    response = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": url, "events": ["flag.created"]},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("inside", ["https://127.0.0.1:9/hook", "https://[2002:7f00:1::]:9/hook"])
async def test_urls_are_checked_again_before_sending(
    app: FastAPI, client: httpx.AsyncClient, world: World, inside: str
) -> None:
    response = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": "https://93.184.215.14/hook", "events": ["flag.created"]},
    )
    endpoint_id = response.json()["id"]
    # The address changed since it was saved (as a DNS name can): it now points inside.
    async with session_scope(app.state.session_factory) as session:
        await session.execute(update(WebhookEndpoint).values(url=inside))
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert await deliver_due(app.state.session_factory, app.state.settings) == 1
    async with session_scope(app.state.session_factory) as session:
        delivery = (await session.execute(select(WebhookDelivery))).scalar_one()
        attempt = (await session.execute(select(WebhookAttempt))).scalar_one()
    assert delivery.status == "failed" and attempt.status_code is None
    assert attempt.error and attempt.error.startswith("refused")
    assert str(delivery.endpoint_id) == endpoint_id
