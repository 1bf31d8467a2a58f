"""A stranger can't lock a patient out: a device that signed in before shows its device token and is
throttled on its own, not by the account's failures (OWASP "device cookies")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from models.base import utcnow
from services.accounts import users as accounts
from services.accounts.tokens import issue_device_token
from services.database import session_scope
from tests.world import World

# Validation and HTTP behaviour that no database changes (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.one_database

PASSWORD = "correct horse battery"
WRONG = "not the password"
OWNER = "owner@a.example"
OTHER = "other@a.example"

# Sign-in from a client address of our choosing: "203.0.113.<n>".
SignIn = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
async def accounts_with_passwords(app: FastAPI) -> dict[str, uuid.UUID]:
    async with session_scope(app.state.session_factory) as session:
        org = await accounts.create_organization(session, "Clinic")
        ids = {}
        for email in (OWNER, OTHER):
            patient = await accounts.create_patient(
                session,
                organization_id=org.id,
                email=email,
                name="Pat",
                timezone="Europe/Berlin",
                password=PASSWORD,
            )
            ids[email] = patient.user_id
    return ids


@pytest.fixture
async def sign_in(app: FastAPI) -> AsyncIterator[SignIn]:
    async with AsyncExitStack() as stack:
        clients: dict[int, httpx.AsyncClient] = {}

        async def post(
            email: str, password: str, device_token: str | None = None, *, address: int = 1
        ) -> httpx.Response:
            if address not in clients:
                transport = httpx.ASGITransport(app=app, client=(f"203.0.113.{address}", 40000))
                clients[address] = await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
            form = {"username": email, "password": password}
            if device_token is not None:
                form["device_token"] = device_token
            return await clients[address].post("/v1/auth/token", data=form)

        yield post


async def _device_token(sign_in: SignIn, email: str = OWNER) -> str:
    response = await sign_in(email, PASSWORD, address=1)
    assert response.status_code == 200, response.text
    token = response.json()["device_token"]
    assert isinstance(token, str) and token
    return token


async def _strangers_guess(app: FastAPI, sign_in: SignIn, email: str = OWNER) -> None:
    """Wrong passwords from as many addresses as the account allows failures: it is throttled."""
    for n in range(app.state.settings.login_max_failures_per_account):
        assert (await sign_in(email, WRONG, address=100 + n)).status_code == 401


@pytest.mark.usefixtures("accounts_with_passwords")
async def test_strangers_guesses_do_not_lock_out_a_device_that_signed_in_before(
    app: FastAPI, sign_in: SignIn, client: httpx.AsyncClient
) -> None:
    device = await _device_token(sign_in)
    await _strangers_guess(app, sign_in)
    # Without its device token the owner is throttled with everyone else...
    refused = await sign_in(OWNER, PASSWORD, address=1)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    # ...with it, the right password works, from the usual address or a new one (mobile networks).
    for address in (1, 2):
        answer = await sign_in(OWNER, PASSWORD, device, address=address)
        assert answer.status_code == 200, answer.text
        assert answer.json()["device_token"] not in ("", device)  # a fresh one each time
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
        assert me.status_code == 200 and me.json()["email"] == OWNER
    # The strangers stay throttled, and a wrong password with the device token is still wrong.
    assert (await sign_in(OWNER, PASSWORD, address=150)).status_code == 429
    assert (await sign_in(OWNER, WRONG, device, address=1)).status_code == 401


@pytest.mark.usefixtures("accounts_with_passwords")
async def test_a_device_token_of_another_account_does_not_exempt(app: FastAPI, sign_in: SignIn) -> None:
    others_device = await _device_token(sign_in, OTHER)
    await _strangers_guess(app, sign_in)
    assert (await sign_in(OWNER, PASSWORD, others_device, address=1)).status_code == 429
    # It still works for its own account, which nobody locked.
    assert (await sign_in(OTHER, PASSWORD, others_device, address=1)).status_code == 200


async def test_a_bad_device_token_counts_as_none(
    app: FastAPI, sign_in: SignIn, client: httpx.AsyncClient, accounts_with_passwords: dict[str, uuid.UUID]
) -> None:
    device = await _device_token(sign_in)
    access_token = (await sign_in(OWNER, PASSWORD, address=1)).json()["access_token"]
    owner = accounts_with_passwords[OWNER]
    claims = jwt.decode(device, options={"verify_signature": False})
    header, payload, signature = device.split(".")
    settings = app.state.settings
    bad = {
        "garbage": "not-a-device-token",
        "empty": "",
        "huge": "x" * 100_000,
        "nul and unicode": "\x00\u00e9\U0001f600",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "signed with another key": jwt.encode(claims, "another-key-" + "x" * 40, algorithm="HS256"),
        "an access token": access_token,
        "expired": issue_device_token(settings, owner, utcnow() - timedelta(days=400)),
        "no nonce": jwt.encode({k: v for k, v in claims.items() if k != "jti"}, settings.secret_key),
        "unsigned": jwt.encode(claims, None, algorithm="none"),
    }
    # Before any lockout, a bad device token is a plain sign-in.
    for address, (name, token) in enumerate(bad.items(), start=10):
        answer = await sign_in(OWNER, PASSWORD, token, address=address)
        assert answer.status_code == 200, f"{name}: {answer.status_code} {answer.text[:200]}"
    await _strangers_guess(app, sign_in)
    # Once strangers locked the account, a bad device token is no way around it.
    for address, (name, token) in enumerate(bad.items(), start=30):
        answer = await sign_in(OWNER, PASSWORD, token, address=address)
        assert answer.status_code == 429, f"{name}: {answer.status_code} {answer.text[:200]}"
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await sign_in(OWNER, PASSWORD, device, address=1)).status_code == 200
    # And a device token is never an access token.
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {device}"})).status_code == 401


@pytest.mark.usefixtures("accounts_with_passwords")
async def test_a_devices_own_failures_lock_that_device_not_the_account(app: FastAPI, sign_in: SignIn) -> None:
    device = await _device_token(sign_in)
    second_device = (await sign_in(OWNER, PASSWORD, address=2)).json()["device_token"]
    for _ in range(app.state.settings.login_max_failures_per_device):
        assert (await sign_in(OWNER, WRONG, device, address=1)).status_code == 401
    locked = await sign_in(OWNER, PASSWORD, device, address=1)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    # The account is not locked: a new device, and the owner's other device, sign in.
    assert (await sign_in(OWNER, PASSWORD, address=3)).status_code == 200
    assert (await sign_in(OWNER, PASSWORD, second_device, address=4)).status_code == 200
    # Successes elsewhere don't lift the locked device's lockout.
    assert (await sign_in(OWNER, PASSWORD, device, address=1)).status_code == 429


@pytest.mark.usefixtures("accounts_with_passwords")
async def test_every_token_answer_carries_a_device_token(
    app: FastAPI, sign_in: SignIn, client: httpx.AsyncClient, world: World
) -> None:
    signed_in = (await sign_in(OWNER, PASSWORD)).json()
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert refreshed.status_code == 200
    created = await client.post(
        "/v1/patients",
        headers=world["provider_a"].headers,
        json={"email": "new@a.example", "name": "New", "timezone": "Europe/Berlin"},
    )
    assert created.status_code == 201, created.text
    enrolled = await client.post(
        "/v1/auth/enroll", json={"enrollment_code": created.json()["enrollment_code"], "password": PASSWORD}
    )
    assert enrolled.status_code == 200
    for answer in (signed_in, refreshed.json(), enrolled.json()):
        assert set(answer) == {"access_token", "token_type", "expires_in", "refresh_token", "device_token"}
    # Each is a device token of its account: it takes the owner past strangers' lockout.
    await _strangers_guess(app, sign_in)
    assert (await sign_in(OWNER, PASSWORD, refreshed.json()["device_token"], address=5)).status_code == 200
    await _strangers_guess(app, sign_in, "new@a.example")
    new_device = enrolled.json()["device_token"]
    assert (await sign_in("new@a.example", PASSWORD, new_device, address=6)).status_code == 200
