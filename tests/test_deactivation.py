"""Closing accounts (issue 25, finding 5): an admin deactivates a user of their organization and every
token that user holds is refused at once; they can't sign in, refresh or enroll; their records stay;
reactivation lets them sign in again, never revives the old sessions. Care-team changes end a
provider's access at once too. (Across two API processes: tests/test_auth_cache.py.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from models.accounts import Role
from models.audit import AuditEvent
from models.auth import TokenFamily
from models.base import utcnow
from services.accounts import users as accounts
from services.accounts.auth import start_session
from services.database import session_scope
from tests.entry_helpers import ago, dose
from tests.world import World

PASSWORD = "correct horse battery"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": email, "password": password})


async def _deactivate(
    client: httpx.AsyncClient, world: World, user_id: object, by: str = "admin_a"
) -> httpx.Response:
    return await client.post(f"/v1/users/{user_id}/deactivate", headers=world[by].headers)


async def _reactivate(
    client: httpx.AsyncClient, world: World, user_id: object, by: str = "admin_a"
) -> httpx.Response:
    return await client.post(f"/v1/users/{user_id}/reactivate", headers=world[by].headers)


async def _provider_with_password(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    body = {"email": "leaving.doc@a.example", "name": "Leaving Doc", "password": PASSWORD}
    created = await client.post("/v1/providers", headers=world["admin_a"].headers, json=body)
    assert created.status_code == 201, created.text
    return {"id": created.json()["id"], "email": body["email"]}


async def test_a_deactivated_provider_s_tokens_sign_in_and_refresh_all_stop_and_records_stay(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    provider = await _provider_with_password(client, world)
    pair = (await _sign_in(client, provider["email"], PASSWORD)).json()
    second = (await _sign_in(client, provider["email"], PASSWORD)).json()  # another device
    for session in (pair, second):
        # Known to the caller cache: only the deactivation's own invalidation can end it now.
        assert (await client.get("/v1/me", headers=_bearer(session["access_token"]))).status_code == 200

    closed = await _deactivate(client, world, provider["id"])
    assert closed.status_code == 200, closed.text
    status = closed.json()
    assert status["id"] == provider["id"] and status["role"] == "provider"
    assert status["active"] is False and status["deactivated_at"]

    # Every token, on every route, from the moment of the answer.
    for session in (pair, second):
        headers = _bearer(session["access_token"])
        assert (await client.get("/v1/me", headers=headers)).status_code == 401
        assert (await client.get("/v1/patients", headers=headers)).status_code == 401
        refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert refreshed.status_code == 401
    # Sign-in answers exactly as for a wrong password: the account's state is told to no one.
    right = await _sign_in(client, provider["email"], PASSWORD)
    wrong = await _sign_in(client, provider["email"], "not the password")
    assert right.status_code == wrong.status_code == 401
    assert right.json() == wrong.json()
    assert right.headers["content-type"].startswith("application/problem+json")

    # The account and its history stay; the organization's list says it is closed.
    providers = (await client.get("/v1/providers", headers=world["admin_a"].headers)).json()
    assert [p["active"] for p in providers if p["id"] == provider["id"]] == [False]
    async with session_scope(app.state.session_factory) as session:
        families = (
            (
                await session.execute(
                    select(TokenFamily).where(TokenFamily.user_id == uuid.UUID(provider["id"]))
                )
            )
            .scalars()
            .all()
        )
    assert len(families) == 2 and {f.revoked_reason for f in families} == {"deactivated"}

    # Deactivating again changes nothing.
    again = await _deactivate(client, world, provider["id"])
    assert again.status_code == 200 and again.json()["deactivated_at"] == status["deactivated_at"]

    # Reactivated: a new sign-in works; the sessions that ended stay ended.
    reopened = await _reactivate(client, world, provider["id"])
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["active"] is True and reopened.json()["deactivated_at"] is None
    fresh = await _sign_in(client, provider["email"], PASSWORD)
    assert fresh.status_code == 200, fresh.text
    assert (await client.get("/v1/me", headers=_bearer(fresh.json()["access_token"]))).status_code == 200
    assert (await client.get("/v1/me", headers=_bearer(pair["access_token"]))).status_code == 401
    old_refresh = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert old_refresh.status_code == 401


async def test_a_deactivated_patient_is_refused_at_once_and_staff_still_see_their_records(
    client: httpx.AsyncClient, world: World
) -> None:
    patient, admin = world["patient_a"], world["admin_a"]
    recorded = await client.post(
        f"/v1/patients/{patient.patient_id}/doses", json=dose(), headers=patient.headers
    )
    assert recorded.status_code == 201
    # The patient's requests are served from the cached caller and their own records.
    assert (await client.get("/v1/patients/me", headers=patient.headers)).status_code == 200

    closed = await _deactivate(client, world, patient.user_id)
    assert closed.status_code == 200, closed.text
    assert closed.json()["patient_id"] == str(patient.patient_id) and closed.json()["role"] == "patient"
    assert (await client.get("/v1/patients/me", headers=patient.headers)).status_code == 401
    assert (
        await client.post(f"/v1/patients/{patient.patient_id}/doses", json=dose(), headers=patient.headers)
    ).status_code == 401
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": patient.refresh_token})
    ).status_code == 401

    # Their records stay, for their care team; their profile says the account is closed.
    chart = await client.get(f"/v1/patients/{patient.patient_id}", headers=world["provider_a"].headers)
    assert chart.status_code == 200 and chart.json()["active"] is False
    assert chart.json()["user_id"] == str(patient.user_id)
    doses = await client.get(f"/v1/patients/{patient.patient_id}/doses", headers=world["provider_a"].headers)
    assert [d["id"] for d in doses.json()["items"]] == [recorded.json()["id"]]

    # The trail says who closed and reopened whose account, in the patient's own trail too.
    assert (await _reactivate(client, world, patient.user_id)).status_code == 200
    trail = await client.get(f"/v1/audit?patient_id={patient.patient_id}&limit=500", headers=admin.headers)
    actions = [
        (e["action"], e["actor_user_id"], e["target_user_id"])
        for e in trail.json()["items"]
        if e["action"].startswith("POST /v1/users/")
    ]
    assert actions == [
        ("POST /v1/users/{user_id}/deactivate", str(admin.user_id), str(patient.user_id)),
        ("POST /v1/users/{user_id}/reactivate", str(admin.user_id), str(patient.user_id)),
    ]
    assert str(patient.user_id) not in str([e["action"] for e in trail.json()["items"]])


async def test_staff_deactivations_are_in_the_organization_s_trail(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    provider = world["provider_a2"]
    assert (await _deactivate(client, world, provider.user_id)).status_code == 200
    async with session_scope(app.state.session_factory) as session:
        rows = (
            (await session.execute(select(AuditEvent).where(AuditEvent.target_user_id == provider.user_id)))
            .scalars()
            .all()
        )
    assert [(r.action, r.actor_user_id, r.patient_id, r.outcome) for r in rows] == [
        ("POST /v1/users/{user_id}/deactivate", world["admin_a"].user_id, None, "success")
    ]
    trail = (await client.get("/v1/audit?limit=500", headers=world["admin_a"].headers)).json()["items"]
    assert str(provider.user_id) in [e["target_user_id"] for e in trail]


async def test_a_deactivated_patient_can_t_enroll_until_reactivated(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await client.post(
        "/v1/patients",
        headers=world["provider_a"].headers,
        json={"email": "new@a.example", "name": "New Patient", "timezone": "Europe/Berlin"},
    )
    assert created.status_code == 201
    code = created.json()["enrollment_code"]
    assert (await _deactivate(client, world, created.json()["user_id"])).status_code == 200
    refused = await client.post("/v1/auth/enroll", json={"enrollment_code": code, "password": PASSWORD})
    assert refused.status_code == 401
    assert (await _reactivate(client, world, created.json()["user_id"])).status_code == 200
    enrolled = await client.post("/v1/auth/enroll", json={"enrollment_code": code, "password": PASSWORD})
    assert enrolled.status_code == 200, enrolled.text  # the refusal did not spend the code


async def test_only_an_admin_of_the_organization_closes_accounts_and_not_their_own(
    client: httpx.AsyncClient, world: World
) -> None:
    target = world["provider_a"].user_id
    for outsider in ("admin_b", "provider_b", "patient_b", "provider_a2", "patient_a"):
        for action in (_deactivate, _reactivate):
            refused = await action(client, world, target, by=outsider)
            assert refused.status_code == 404, (outsider, refused.status_code)
            assert refused.headers["content-type"].startswith("application/problem+json")
    unknown = await _deactivate(client, world, uuid.uuid4())
    assert unknown.status_code == 404 and unknown.json()["detail"] == "No such user."
    assert (await _deactivate(client, world, "not-a-uuid")).status_code == 422
    # Another organization's users are not found, as unknown ids are.
    assert (await _deactivate(client, world, world["patient_b"].user_id)).status_code == 404

    own = await _deactivate(client, world, world["admin_a"].user_id)
    assert own.status_code == 409
    assert own.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/v1/me", headers=world["admin_a"].headers)).status_code == 200
    # Nothing was closed by the refused requests.
    assert (await client.get("/v1/me", headers=world["provider_a"].headers)).status_code == 200
    assert (await client.get("/v1/me", headers=world["patient_b"].headers)).status_code == 200


async def test_another_admin_closes_an_admin_and_a_deactivated_provider_joins_no_care_team(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    async with session_scope(app.state.session_factory) as session:
        second = await accounts.create_user(
            session,
            organization_id=world.organizations["A"],
            email="second.admin@a.example",
            name="Second Admin",
            role=Role.admin,
            password=None,
        )
        pair = await start_session(session, app.state.settings, second.id, utcnow())
    assert (await client.get("/v1/me", headers=world["admin_a"].headers)).status_code == 200
    closed = await client.post(
        f"/v1/users/{world['admin_a'].user_id}/deactivate", headers=_bearer(pair.access_token)
    )
    assert closed.status_code == 200 and closed.json()["role"] == "admin"
    assert (await client.get("/v1/me", headers=world["admin_a"].headers)).status_code == 401

    provider = world["provider_a2"]
    assert (
        await client.post(f"/v1/users/{provider.user_id}/deactivate", headers=_bearer(pair.access_token))
    ).status_code == 200
    chart = f"/v1/patients/{world['patient_a'].patient_id}"
    joined = await client.patch(
        chart, headers=_bearer(pair.access_token), json={"provider_ids": [str(provider.user_id)]}
    )
    assert joined.status_code == 422 and "active provider" in joined.text


async def test_a_provider_taken_off_a_care_team_loses_the_patient_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    carer, colleague, patient = world["provider_a"], world["provider_a2"], world["patient_a"]
    chart = f"/v1/patients/{patient.patient_id}"
    # The carer's caller is cached and the patient's flag list and chart are readable.
    today = datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    check_in = {"id": str(uuid.uuid4()), "date": today, "submitted_at": ago(minutes=1), "anxiety_rating": 3}
    flagged = await client.post(
        f"{chart}/check-ins", json={**check_in, "red_flags": {"fall": True}}, headers=patient.headers
    )
    assert flagged.status_code == 201, flagged.text
    assert (await client.get(chart, headers=carer.headers)).status_code == 200
    assert len((await client.get("/v1/flags", headers=carer.headers)).json()["items"]) == 1

    # Staff change the care team: the carer hands the patient to a colleague and leaves it.
    handed = await client.patch(chart, headers=carer.headers, json={"provider_ids": [str(colleague.user_id)]})
    assert handed.status_code == 200, handed.text
    assert handed.json()["provider_ids"] == [str(colleague.user_id)]
    for path in (chart, f"{chart}/summary", f"{chart}/doses", f"{chart}/flags"):
        assert (await client.get(path, headers=carer.headers)).status_code == 404, path
        assert (await client.get(path, headers=colleague.headers)).status_code == 200, path
    assert (await client.get("/v1/patients", headers=carer.headers)).json()["items"] == []
    assert (await client.get("/v1/flags", headers=carer.headers)).json()["items"] == []
    assert len((await client.get("/v1/flags", headers=colleague.headers)).json()["items"]) == 1
    # An admin takes the colleague off too; the admin still sees the patient.
    emptied = await client.patch(chart, headers=world["admin_a"].headers, json={"provider_ids": []})
    assert emptied.status_code == 200
    assert (await client.get(chart, headers=colleague.headers)).status_code == 404
    assert (await client.get(chart, headers=world["admin_a"].headers)).status_code == 200
