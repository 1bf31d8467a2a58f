"""Sign-in, throttling, refresh rotation and reuse detection, sign-out, enrollment."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from models.accounts import Role
from models.auth import EnrollmentCode, TokenFamily
from models.base import utcnow
from services.accounts import passwords
from services.accounts import users as accounts
from services.database import session_scope
from tests.world import World

PASSWORD = "correct horse battery"


async def _staff(app: FastAPI, email: str = "doc@a.example", role: Role = Role.provider) -> None:
    async with session_scope(app.state.session_factory) as session:
        org = await accounts.create_organization(session, "Clinic")
        await accounts.create_user(
            session, organization_id=org.id, email=email, name="Doc", role=role, password=PASSWORD
        )


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": email, "password": password})


async def test_sign_in_gives_a_token_pair_that_works(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _staff(app)
    response = await _sign_in(client, "Doc@A.example", PASSWORD)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 15 * 60
    assert pair["refresh_token"] and pair["access_token"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == "doc@a.example" and me.json()["role"] == "provider"
    assert me.json()["patient_id"] is None


async def test_wrong_password_and_unknown_email_answer_alike(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _staff(app)
    verified: list[str] = []
    real_verify = passwords.verify_password

    def counting_verify(password: str, password_hash: str) -> bool:
        verified.append(password_hash)
        return real_verify(password, password_hash)

    monkeypatch.setattr("services.accounts.auth.verify_password", counting_verify)
    wrong = await _sign_in(client, "doc@a.example", "not the password")
    unknown = await _sign_in(client, "nobody@a.example", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"
    # Both paths verify a real Argon2 hash: the unknown email costs the same work.
    assert len(verified) == 2 and all(h.startswith("$argon2") for h in verified)


async def test_repeated_failures_for_one_account_are_throttled(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _staff(app)
    limit = app.state.settings.login_max_failures_per_account
    for _ in range(limit):
        assert (await _sign_in(client, "doc@a.example", "wrong password")).status_code == 401
    throttled = await _sign_in(client, "doc@a.example", PASSWORD)
    assert throttled.status_code == 429
    assert throttled.headers["content-type"].startswith("application/problem+json")
    retry_after = int(throttled.headers["retry-after"])
    assert 0 < retry_after <= app.state.settings.login_failure_window_seconds
    # Another account from the same address is not locked out by this one.
    await _staff_other(app)
    assert (await _sign_in(client, "other@a.example", PASSWORD)).status_code == 200


async def _staff_other(app: FastAPI) -> None:
    async with session_scope(app.state.session_factory) as session:
        org = await accounts.create_organization(session, "Other clinic")
        await accounts.create_user(
            session,
            organization_id=org.id,
            email="other@a.example",
            name="Other",
            role=Role.admin,
            password=PASSWORD,
        )


async def test_throttle_window_ends(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _staff(app)
    for _ in range(app.state.settings.login_max_failures_per_account):
        await _sign_in(client, "doc@a.example", "wrong password")
    assert (await _sign_in(client, "doc@a.example", PASSWORD)).status_code == 429
    # Let the window pass: every window of this process's counters ended a second ago.
    windows = app.state.counters._windows
    for key, (count, _ends) in windows.items():
        windows[key] = (count, utcnow() - timedelta(seconds=1))
    assert (await _sign_in(client, "doc@a.example", PASSWORD)).status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient, world: World) -> None:
    person = world["provider_a"]
    first = await client.post("/v1/auth/refresh", json={"refresh_token": person.refresh_token})
    assert first.status_code == 200, first.text
    new = first.json()
    assert new["refresh_token"] != person.refresh_token
    new_headers = {"Authorization": f"Bearer {new['access_token']}"}
    assert (await client.get("/v1/me", headers=new_headers)).status_code == 200

    # The spent token comes back (stolen, or replayed): refused, and the whole family dies.
    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": person.refresh_token})
    assert reuse.status_code == 401
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
    ).status_code == 401
    assert (await client.get("/v1/me", headers=new_headers)).status_code == 401
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 401
    # Other sessions are untouched.
    assert (await client.get("/v1/me", headers=world["provider_a2"].headers)).status_code == 200


async def test_two_racing_refreshes_with_one_token_cannot_both_win(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    token = world["admin_a"].refresh_token
    answers = await asyncio.gather(
        client.post("/v1/auth/refresh", json={"refresh_token": token}),
        client.post("/v1/auth/refresh", json={"refresh_token": token}),
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 401], codes
    async with session_scope(app.state.session_factory) as session:
        revoked = await session.scalar(
            select(TokenFamily.revoked_reason).where(TokenFamily.user_id == world["admin_a"].user_id)
        )
    assert revoked == "reuse"


async def test_unknown_and_expired_refresh_tokens_are_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": "made-up"})).status_code == 401
    async with session_scope(app.state.session_factory) as session:
        from models.auth import RefreshToken

        await session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await client.post("/v1/auth/refresh", json={"refresh_token": world["patient_a"].refresh_token})
    assert response.status_code == 401


async def test_logout_ends_the_session(client: httpx.AsyncClient, world: World) -> None:
    person = world["patient_a"]
    assert (await client.post("/v1/auth/logout", headers=person.headers)).status_code == 204
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 401
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": person.refresh_token})
    ).status_code == 401


async def test_me_names_the_patient_record(client: httpx.AsyncClient, world: World) -> None:
    patient = world["patient_a"]
    me = (await client.get("/v1/me", headers=patient.headers)).json()
    assert me["role"] == "patient" and me["patient_id"] == str(patient.patient_id)
    own = await client.get("/v1/patients/me", headers=patient.headers)
    assert own.status_code == 200 and own.json()["id"] == str(patient.patient_id)


async def _new_patient(
    client: httpx.AsyncClient, world: World, email: str = "new@a.example"
) -> dict[str, object]:
    response = await client.post(
        "/v1/patients",
        headers=world["provider_a"].headers,
        json={"email": email, "name": "New Patient", "timezone": "Europe/Berlin"},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_enrollment_works_once(client: httpx.AsyncClient, world: World) -> None:
    created = await _new_patient(client, world)
    code = str(created["enrollment_code"])
    assert created["enrolled"] is False
    # Too short a password is refused and does not spend the code.
    short = await client.post("/v1/auth/enroll", json={"enrollment_code": code, "password": "short"})
    assert short.status_code == 422
    # Codes are typed by people: case and dashes don't matter.
    typed = code.replace("-", " ").lower()
    enrolled = await client.post("/v1/auth/enroll", json={"enrollment_code": typed, "password": PASSWORD})
    assert enrolled.status_code == 200, enrolled.text
    headers = {"Authorization": f"Bearer {enrolled.json()['access_token']}"}
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["patient_id"] == created["id"] and me["role"] == "patient"
    again = await client.post(
        "/v1/auth/enroll", json={"enrollment_code": code, "password": "another password"}
    )
    assert again.status_code == 401
    # The password set at enrollment signs in.
    assert (await _sign_in(client, "new@a.example", PASSWORD)).status_code == 200
    assert (await _sign_in(client, "new@a.example", "another password")).status_code == 401


async def test_expired_enrollment_code_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    created = await _new_patient(client, world)
    expires_at = created["enrollment_code_expires_at"]
    assert isinstance(expires_at, str)
    async with session_scope(app.state.session_factory) as session:
        await session.execute(update(EnrollmentCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await client.post(
        "/v1/auth/enroll", json={"enrollment_code": created["enrollment_code"], "password": PASSWORD}
    )
    assert response.status_code == 401
    assert (await _sign_in(client, "new@a.example", PASSWORD)).status_code == 401


async def test_enrollment_code_expires_after_seven_days_and_is_stored_hashed(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    created = await _new_patient(client, world)
    async with session_scope(app.state.session_factory) as session:
        stored = (await session.execute(select(EnrollmentCode))).scalar_one()
    assert stored.expires_at - stored.created_at == timedelta(days=7)
    code = str(created["enrollment_code"])
    assert code not in stored.code_hash and code.replace("-", "") not in stored.code_hash


async def test_password_is_stored_as_argon2(app: FastAPI) -> None:
    await _staff(app)
    async with session_scope(app.state.session_factory) as session:
        from models.accounts import User

        user = (await session.execute(select(User))).scalar_one()
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
