"""Webhook signing secrets are stored encrypted (Fernet, keys from SYMPTRACK_WEBHOOK_SECRET_KEYS), shown
in plaintext only in the answer to creation and rotation, and still sign deliveries that a receiver
verifies with the plaintext; the keys rotate with `symptrack rotate-webhook-keys`; a missing key
fails loudly, never with a bad signature."""

from __future__ import annotations

import base64
import os
import sys
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import create_engine, select, text

from models.base import utcnow
from models.webhooks import WebhookDelivery
from services.alerting import webhook_secrets
from services.alerting.delivery import deliver_due
from services.database import session_scope
from services.platform import migrations
from services.platform.migrations import sync_database_url
from services.settings import Settings
from tests.databases import STRONG_KEY, settings_for
from tests.flag_helpers import check_in, day
from tests.receiver import Receiver
from tests.world import World

SYMPTRACK = str(Path(sys.executable).with_name("symptrack"))
KEY_1, KEY_2, STRANGER = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(
        database_url,
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_secret_keys=[KEY_1],
    )


def _stored(database_url: str) -> list[tuple[str, str | None]]:
    engine = create_engine(sync_database_url(database_url))
    try:
        with engine.connect() as connection:
            query = text("SELECT secret, previous_secret FROM webhook_endpoint ORDER BY id")
            return [(row[0], row[1]) for row in connection.execute(query)]
    finally:
        engine.dispose()


def _assert_hidden(secret: str, stored: str) -> None:
    """Nothing of the plaintext secret is in the stored value: not the prefix, its text or its bytes."""
    key_text = secret.removeprefix("whsec_")
    assert "whsec_" not in stored and key_text not in stored
    assert base64.b64decode(key_text) not in stored.encode()
    assert base64.b64decode(key_text) not in base64.urlsafe_b64decode(stored.encode())


async def _endpoint(client: httpx.AsyncClient, world: World, receiver: Receiver) -> dict[str, str]:
    response = await client.post(
        "/v1/webhook-endpoints",
        headers=world["admin_a"].headers,
        json={"url": receiver.url, "events": ["flag.created"], "min_severity": "urgent"},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _rotate(client: httpx.AsyncClient, world: World, endpoint_id: str) -> str:
    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", headers=world["admin_a"].headers
    )
    assert rotated.status_code == 200, rotated.text
    return str(rotated.json()["secret"])


async def _deliveries(app: FastAPI) -> list[WebhookDelivery]:
    async with session_scope(app.state.session_factory) as session:
        return list((await session.execute(select(WebhookDelivery))).scalars())


async def test_secrets_are_stored_encrypted_and_still_sign_verifiable_deliveries(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver, database_url: str
) -> None:
    endpoint = await _endpoint(client, world, receiver)
    first = endpoint["secret"]
    [(stored, previous)] = _stored(database_url)
    assert previous is None
    _assert_hidden(first, stored)
    assert Fernet(KEY_1).decrypt(stored.encode()).decode() == first
    second = await _rotate(client, world, endpoint["id"])
    [(stored, previous)] = _stored(database_url)
    assert previous is not None
    for secret in (first, second):
        _assert_hidden(secret, stored)
        _assert_hidden(secret, previous)
    # Only the answers to creation and rotation show a secret.
    shown = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=world["admin_a"].headers)
    listed = await client.get("/v1/webhook-endpoints", headers=world["admin_a"].headers)
    assert "whsec_" not in shown.text + listed.text and stored not in shown.text + listed.text
    receiver.secrets = [first, second]
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert await deliver_due(app.state.session_factory, app.state.settings) == 1
    [request] = receiver.wait_for(1)
    assert request.verified_with == [first, second]  # during the overlap both secrets sign


async def test_a_missing_key_fails_the_delivery_clearly_and_sends_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    receiver.secrets.append((await _endpoint(client, world, receiver))["secret"])
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    wrong = app.state.settings.model_copy(update={"webhook_secret_keys": [STRANGER]})
    assert await deliver_due(app.state.session_factory, wrong) == 1
    assert receiver.received == []
    [delivery] = await _deliveries(app)
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("not sent: a stored webhook secret cannot be decrypted")
    assert "SYMPTRACK_WEBHOOK_SECRET_KEYS" in delivery.last_error
    # With the key back, the retry goes out signed as before.
    async with session_scope(app.state.session_factory) as session:
        delivery = await session.get_one(WebhookDelivery, delivery.id)
        delivery.next_attempt_at = utcnow()
    assert await deliver_due(app.state.session_factory, app.state.settings) == 1
    assert receiver.wait_for(1)[0].verified_with == receiver.secrets


async def _symptrack(database_url: str, keys: list[str], *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "SYMPTRACK_DATABASE_URL": database_url,
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_WEBHOOK_SECRET_KEYS": "[" + ", ".join(f'"{key}"' for key in keys) + "]",
    }
    done = await anyio.run_process([SYMPTRACK, *args], env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.slow
async def test_rotating_the_encryption_keys_with_the_command_keeps_deliveries_verifiable(
    app: FastAPI, client: httpx.AsyncClient, world: World, receiver: Receiver, database_url: str
) -> None:
    endpoint = await _endpoint(client, world, receiver)
    second = await _rotate(client, world, endpoint["id"])
    receiver.secrets = [endpoint["secret"], second]
    before = _stored(database_url)
    # Keys that open nothing: a clear error, and nothing changes.
    code, _, stderr = await _symptrack(database_url, [KEY_2], "rotate-webhook-keys")
    assert code == 1 and "SYMPTRACK_WEBHOOK_SECRET_KEYS" in stderr and endpoint["id"] in stderr
    assert _stored(database_url) == before
    # The new key first, the old one after it: every secret is re-encrypted with the new key.
    code, stdout, stderr = await _symptrack(database_url, [KEY_2, KEY_1], "rotate-webhook-keys")
    assert code == 0, stderr
    assert "1 webhook endpoint(s) re-encrypted" in stdout
    [(stored, previous)] = _stored(database_url)
    assert previous is not None and (stored, previous) != before[0]
    assert Fernet(KEY_2).decrypt(stored.encode()).decode() == second
    assert Fernet(KEY_2).decrypt(previous.encode()).decode() == endpoint["secret"]
    # The old key dropped: deliveries are signed as before.
    only_new = app.state.settings.model_copy(update={"webhook_secret_keys": [KEY_2]})
    await check_in(client, world["patient_a"], day(0), red_flags={"seizure": True})
    assert await deliver_due(app.state.session_factory, only_new) == 1
    [request] = receiver.wait_for(1)
    assert request.verified_with == receiver.secrets


def test_production_needs_its_own_keys_and_refuses_bad_ones_without_printing_them() -> None:
    production = {
        "environment": "production",
        "secret_key": STRONG_KEY,
        "database_url": "postgresql+asyncpg://symptrack@db:5432/symptrack",
    }
    with pytest.raises(ValidationError, match="SYMPTRACK_WEBHOOK_SECRET_KEYS must be set"):
        Settings(_env_file=None, **production)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="JSON list of Fernet keys") as refused:
        Settings(_env_file=None, webhook_secret_keys=[KEY_1, "not-a-key-but-a-secret"])  # type: ignore[call-arg]
    assert "not-a-key-but-a-secret" not in str(refused.value) and KEY_1 not in str(refused.value)
    ok = Settings(_env_file=None, webhook_secret_keys=[KEY_1], **production)  # type: ignore[arg-type]
    assert webhook_secrets.decrypt(ok, Fernet(KEY_1).encrypt(b"whsec_x").decode()) == "whsec_x"


def test_development_without_keys_derives_one_from_the_secret_key() -> None:
    one = settings_for("sqlite+aiosqlite:///unused.db", secret_key="a" * 40)
    same = settings_for("sqlite+aiosqlite:///unused.db", secret_key="a" * 40)
    other = settings_for("sqlite+aiosqlite:///unused.db", secret_key="b" * 40)
    stored = webhook_secrets.encrypt(one, "whsec_abc")
    assert webhook_secrets.decrypt(same, stored) == "whsec_abc"
    with pytest.raises(webhook_secrets.WebhookKeyError, match="cannot be decrypted"):
        webhook_secrets.decrypt(other, stored)
    # The derived key is not the secret key itself, nor a key anyone would configure.
    assert webhook_secrets.derived_development_key("a" * 40) not in ("a" * 40, KEY_1)


def _insert_endpoint_with_a_delivery(database_url: str, secret: str, previous: str) -> None:
    """At revision 0006, as a clinic's database would be: an endpoint with plaintext secrets."""
    engine = create_engine(sync_database_url(database_url))
    org, endpoint, event = (uuid.uuid4().hex for _ in range(3))
    now = utcnow().isoformat()
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO organization (id, name, created_at) VALUES (:id, 'North', :now)"),
                {"id": org, "now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO webhook_endpoint (id, organization_id, url, events, min_severity, enabled,"
                    " secret, previous_secret, previous_secret_expires_at, created_at, updated_at) VALUES"
                    " (:id, :org, 'https://alerts.example/hook', '[\"flag.created\"]', 'urgent', :yes,"
                    " :secret, :previous, :now, :now, :now)"
                ),
                {"id": endpoint, "org": org, "secret": secret, "previous": previous, "now": now, "yes": True},
            )
            connection.execute(
                text(
                    "INSERT INTO outbox_event (id, type, organization_id, data, created_at)"
                    " VALUES (:id, 'webhook.ping', :org, '{}', :now)"
                ),
                {"id": event, "org": org, "now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO webhook_delivery (id, endpoint_id, event_id, event_type, urgent, status,"
                    " attempts, schedule_step, next_attempt_at, created_at, updated_at) VALUES"
                    " (:id, :endpoint, :event, 'webhook.ping', :no, 'pending', 0, 0, :now, :now, :now)"
                ),
                {"id": uuid.uuid4().hex, "endpoint": endpoint, "event": event, "now": now, "no": False},
            )
    finally:
        engine.dispose()


def _delete_endpoints(database_url: str) -> None:
    engine = create_engine(sync_database_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM webhook_delivery"))
            connection.execute(text("DELETE FROM webhook_endpoint"))
    finally:
        engine.dispose()


def _count_deliveries(database_url: str) -> int:
    engine = create_engine(sync_database_url(database_url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM webhook_delivery")).scalar_one())
    finally:
        engine.dispose()


def test_the_migration_encrypts_existing_secrets_and_its_downgrade_never_writes_them_in_clear(
    empty_database_url: str,
) -> None:
    settings = settings_for(empty_database_url, webhook_secret_keys=[KEY_1])
    migrations.upgrade(settings, "0006")
    secret, previous = (f"whsec_{base64.b64encode(os.urandom(32)).decode()}" for _ in range(2))
    _insert_endpoint_with_a_delivery(empty_database_url, secret, previous)

    migrations.upgrade(settings)
    [(stored, stored_previous)] = _stored(empty_database_url)
    assert stored_previous is not None
    _assert_hidden(secret, stored)
    _assert_hidden(previous, stored_previous)
    assert Fernet(KEY_1).decrypt(stored.encode()).decode() == secret  # the key of the settings
    assert Fernet(KEY_1).decrypt(stored_previous.encode()).decode() == previous
    assert _count_deliveries(empty_database_url) == 1

    # Below 0007 the schema keeps secrets in clear: the downgrade refuses, saying what to do, and stops
    # at 0007 with the secrets as they were.
    with pytest.raises(migrations.MigrationRefused, match="1 webhook endpoint") as refused:
        migrations.migrate_to(settings, "0006")
    assert "DELETE /v1/webhook-endpoints/{id}" in str(refused.value)
    assert "the database is now at 0007" in str(refused.value)
    assert migrations.current_revision(settings) == "0007"
    assert _stored(empty_database_url) == [(stored, stored_previous)]
    migrations.upgrade(settings)  # and on up again from there

    # Without endpoints there is no secret to write: the downgrade goes through, and back up.
    _delete_endpoints(empty_database_url)
    assert migrations.migrate_to(settings, "0006").after == "0006"
    moved = migrations.migrate_to(settings)
    assert (moved.before, moved.after) == ("0006", moved.head)
