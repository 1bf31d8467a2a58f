"""A send connects to the address it checked: the host name is resolved once per send, every address
is checked, and the connection goes to the checked one, while the Host header, TLS SNI and the
certificate check still use the name. A name that answers differently a moment later (DNS rebinding)
cannot lead a send into our own network."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trustme
from fastapi import FastAPI
from sqlalchemy import select

from models.webhooks import WebhookDelivery
from services.alerting import url_safety as webhook_urls
from services.alerting.delivery import deliver_due, webhook_client
from services.alerting.url_safety import UnsafeUrl, pinned_target
from services.database import session_scope
from services.settings import Settings
from tests.databases import settings_for
from tests.flag_helpers import check_in, day
from tests.receiver import Receiver
from tests.world import World

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database


@dataclass
class Dns:
    """socket.getaddrinfo for a few names of our own (anything else goes to the real resolver). Each
    name has a list of answers, given in turn, the last one repeating (none: the name does not
    exist); an answer is one or more space-separated addresses. Every lookup of our names is counted."""

    real: Callable[..., Any]
    names: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def __call__(self, host: str | bytes | None, port: object, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        answers = self.names.get(name or "")
        if answers is None:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(str(name))
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        number = int(port) if isinstance(port, int | str) and str(port).isdigit() else 0
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, number, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, number))
            for a in answer.split()
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    resolver = Dns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return resolver


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    overrides: dict[str, object] = getattr(request, "param", {})
    values: dict[str, object] = {"webhook_allow_http": True, "webhook_allow_private_networks": True}
    return settings_for(database_url, **{**values, **overrides})


async def _endpoint(client: httpx.AsyncClient, world: World, receiver: Receiver, url: str) -> str:
    response = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": url, "events": ["flag.created"], "min_severity": "urgent"},
    )
    assert response.status_code == 201, response.text
    receiver.secrets.append(response.json()["secret"])
    return str(response.json()["id"])


async def _statuses(app: FastAPI) -> list[tuple[str, str | None]]:
    async with session_scope(app.state.session_factory) as session:
        rows = (await session.execute(select(WebhookDelivery))).scalars()
        return [(d.status, d.last_error) for d in rows]


@pytest.mark.parametrize("settings", [{"webhook_allow_private_networks": False}], indirect=True)
async def test_a_name_that_rebinds_after_the_check_cannot_redirect_the_send(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    dns: Dns,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Here 127.0.0.1 (the clinic's receiver) stands for the public internet and 127.0.0.2, where
    # another receiver listens on the same port, for our own network.
    monkeypatch.setattr(webhook_urls, "_refused", lambda address: str(address) != "127.0.0.1")
    inside = Receiver(host="127.0.0.2").start(receiver.port)
    try:
        dns.names["receiver.test"] = ["127.0.0.1"]
        await _endpoint(client, world, receiver, f"http://receiver.test:{receiver.port}/alerts")
        # The attacker's name now answers the checked address once, then the inside one.
        dns.names["receiver.test"] = ["127.0.0.1", "127.0.0.2"]
        dns.lookups.clear()
        await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
        assert await deliver_due(app.state.session_factory, app.state.settings) == 1
        [request] = receiver.wait_for(1)
        assert request.verified_with == receiver.secrets
        assert request.headers["host"] == f"receiver.test:{receiver.port}"
        assert inside.received == []
        assert dns.lookups == ["receiver.test"]  # one resolution per send
        assert await _statuses(app) == [("succeeded", None)]
    finally:
        inside.stop()


async def test_with_private_networks_allowed_sends_are_pinned_too(
    app: FastAPI, client: httpx.AsyncClient, world: World, dns: Dns, receiver: Receiver
) -> None:
    dns.names["receiver.test"] = ["127.0.0.1"]
    endpoint_id = await _endpoint(client, world, receiver, f"http://receiver.test:{receiver.port}/alerts")
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    await client.post(f"/v1/webhook-endpoints/{endpoint_id}/ping", headers=world["admin_a"].headers)
    dns.lookups.clear()
    assert await deliver_due(app.state.session_factory, app.state.settings) == 2
    requests = receiver.wait_for(2)
    assert dns.lookups == ["receiver.test", "receiver.test"]
    assert {r.headers["host"] for r in requests} == {f"receiver.test:{receiver.port}"}
    assert all(r.verified_with for r in requests)


@pytest.mark.parametrize(
    ("certified_name", "delivered"),
    [
        ("receiver.test", True),
        ("127.0.0.1", False),  # a certificate for the pinned address is not one for the name
        ("elsewhere.test", False),
    ],
)
async def test_https_to_a_pinned_address_verifies_the_certificate_against_the_name(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    dns: Dns,
    certified_name: str,
    delivered: bool,
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(certified_name).configure_cert(server_context)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    receiver = Receiver(tls=server_context).start()
    try:
        dns.names["receiver.test"] = ["127.0.0.1"]
        await _endpoint(client, world, receiver, f"https://receiver.test:{receiver.port}/alerts")
        await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
        async with webhook_client(app.state.settings, trusting) as http:
            assert await deliver_due(app.state.session_factory, app.state.settings, http) == 1
        assert server_names == ["receiver.test"]
        if delivered:
            [request] = receiver.wait_for(1)
            assert request.verified_with and request.headers["host"] == f"receiver.test:{receiver.port}"
            assert await _statuses(app) == [("succeeded", None)]
        else:
            assert receiver.received == []
            assert await _statuses(app) == [("failed", "ConnectError")]
    finally:
        receiver.stop()


def _public() -> Settings:
    return settings_for("sqlite+aiosqlite:///unused.db")


async def test_the_target_names_the_checked_address_and_keeps_the_name(dns: Dns) -> None:
    dns.names["alerts.example"] = ["93.184.215.14 2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    target = await pinned_target("https://alerts.example:8443/hook?x=1", _public())
    assert target.url == "https://93.184.215.14:8443/hook?x=1"
    assert (target.host_header, target.server_name) == ("alerts.example:8443", "alerts.example")
    dns.names["v6.example"] = ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    target = await pinned_target("https://v6.example/hook", _public())
    assert target.url == "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook"
    assert (target.host_header, target.server_name) == ("v6.example", "v6.example")
    literal = await pinned_target("https://93.184.215.14/hook", _public())
    assert (literal.url, literal.host_header, literal.server_name) == (
        "https://93.184.215.14/hook",
        "93.184.215.14",
        None,
    )
    assert dns.lookups == ["alerts.example", "v6.example"]


async def test_every_address_of_a_name_is_checked_before_a_send(dns: Dns) -> None:
    dns.names["mixed.example"] = ["93.184.215.14 10.0.0.7"]
    with pytest.raises(UnsafeUrl, match="private"):
        await pinned_target("https://mixed.example/hook", _public())
    dns.names["nowhere.example"] = []
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        await pinned_target("https://nowhere.example/hook", _public())
