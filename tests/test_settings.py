"""Settings refuse unsafe defaults and carry CLINICAL.md's product defaults."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.platform import local_secret
from services.settings import Settings
from tests.databases import STRONG_KEY
from tests.test_cli import SYMPTRACK


def test_production_refuses_a_missing_or_short_secret() -> None:
    with pytest.raises(ValidationError, match="SYMPTRACK_SECRET_KEY"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(_env_file=None, environment="production", secret_key="short")  # type: ignore[call-arg]
    webhook_keys = [Fernet.generate_key().decode()]  # required in production too (test_webhook_secrets)
    ok = Settings(
        _env_file=None, environment="production", secret_key=STRONG_KEY, webhook_secret_keys=webhook_keys
    )  # type: ignore[call-arg]
    assert ok.secret_key == STRONG_KEY


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYMPTRACK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SYMPTRACK_DATABASE_URL", "postgresql+asyncpg://u@db/symptrack")
    monkeypatch.setenv("SYMPTRACK_ACCESS_TOKEN_MINUTES", "5")
    monkeypatch.setenv("SYMPTRACK_CORS_ORIGINS", '["https://app.example"]')
    monkeypatch.setenv("SYMPTRACK_WEBHOOK_ALLOW_HTTP", "true")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+asyncpg://u@db/symptrack"
    assert not settings.is_sqlite
    assert settings.access_token_minutes == 5
    assert settings.cors_origins == ["https://app.example"]
    assert settings.webhook_allow_http is True
    assert settings.data_dir == tmp_path and (tmp_path / "secret_key").exists()


def test_defaults_match_the_documents() -> None:
    settings = Settings(_env_file=None, secret_key="k" * 40)  # type: ignore[call-arg]
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.data_dir == Path("var")
    assert settings.access_token_minutes == 15
    assert settings.enrollment_code_days == 7
    assert not settings.webhook_allow_http and not settings.webhook_allow_private_networks
    # CLINICAL.md product defaults.
    assert settings.gad7_interval_days == 14
    assert settings.abrupt_stop_days == 2
    assert (settings.persistent_symptom_min_days, settings.persistent_symptom_window_days) == (3, 7)
    assert settings.persistent_symptom_min_grade == 2
    assert settings.missed_check_in_days == 3
    # above_prescribed: 50% or more over the scheduled daily total on 2 of the last 7 local days.
    assert settings.above_prescribed_percent == 50
    assert (settings.above_prescribed_min_days, settings.above_prescribed_window_days) == (2, 7)
    assert settings.unacknowledged_alert_minutes == 30
    assert settings.late_evidence_hours == 24


def test_above_prescribed_needs_its_days_to_fit_its_window() -> None:
    with pytest.raises(ValidationError, match="ABOVE_PRESCRIBED_MIN_DAYS"):
        Settings(_env_file=None, secret_key="k" * 40, above_prescribed_min_days=8)  # type: ignore[call-arg]
    fits = Settings(_env_file=None, secret_key="k" * 40, above_prescribed_min_days=7)  # type: ignore[call-arg]
    assert fits.above_prescribed_window_days == 7


# --- production refuses the switches meant for tests and local setups (issue 25, finding 6) -------

_PRODUCTION: dict[str, object] = {
    "environment": "production",
    "secret_key": STRONG_KEY,
    "webhook_secret_keys": [Fernet.generate_key().decode()],
}


@pytest.mark.parametrize(
    ("unsafe", "variable"),
    [
        ({"webhook_allow_http": True}, "SYMPTRACK_WEBHOOK_ALLOW_HTTP"),
        ({"webhook_allow_private_networks": True}, "SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
        ({"cors_origins": ["*"]}, "SYMPTRACK_CORS_ORIGINS"),
        ({"cors_origins": ["https://app.clinic.example", "https://*.example"]}, "SYMPTRACK_CORS_ORIGINS"),
        ({"secret_key": "x" * 32}, "SYMPTRACK_SECRET_KEY"),
        ({"secret_key": "ab" * 32}, "SYMPTRACK_SECRET_KEY"),
    ],
)
def test_production_refuses_unsafe_switches_naming_the_variable(
    unsafe: dict[str, object], variable: str
) -> None:
    with pytest.raises(ValidationError, match=variable) as refused:
        Settings(_env_file=None, **{**_PRODUCTION, **unsafe})  # type: ignore[arg-type]
    if "secret_key" in unsafe:
        assert str(unsafe["secret_key"]) not in str(refused.value)  # the key is never printed
        assert "guessable" in str(refused.value)
    # Development keeps them, for tests and local setups.
    Settings(_env_file=None, **{**_PRODUCTION, **unsafe, "environment": "development"})  # type: ignore[arg-type]


def test_every_unsafe_switch_is_named_at_once() -> None:
    unsafe = {"webhook_allow_http": True, "webhook_allow_private_networks": True, "cors_origins": ["*"]}
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **{**_PRODUCTION, **unsafe})  # type: ignore[arg-type]
    for variable in ("WEBHOOK_ALLOW_HTTP", "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "CORS_ORIGINS"):
        assert f"SYMPTRACK_{variable}" in str(refused.value)


def test_a_generated_key_passes_the_entropy_estimate_and_a_patterned_one_does_not() -> None:
    assert local_secret.estimated_bits("x" * 32) == 0
    for _ in range(20):
        assert local_secret.estimated_bits(secrets.token_urlsafe(48)) >= local_secret.MIN_KEY_BITS
        assert local_secret.estimated_bits(secrets.token_hex(32)) >= local_secret.MIN_KEY_BITS
        Settings(_env_file=None, **{**_PRODUCTION, "secret_key": secrets.token_urlsafe(48)})  # type: ignore[arg-type]
    assert local_secret.estimated_bits("abcd" * 8) < local_secret.MIN_KEY_BITS
    assert local_secret.estimated_bits("password" * 8) < local_secret.MIN_KEY_BITS


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYMPTRACK_WEBHOOK_ALLOW_HTTP", "true"),
        ("SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
        ("SYMPTRACK_CORS_ORIGINS", '["*"]'),
        ("SYMPTRACK_SECRET_KEY", "k" * 48),
    ],
)
def test_the_command_refuses_them_with_a_short_message(tmp_path: Path, variable: str, value: str) -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SYMPTRACK_")}
    env = {
        **inherited,
        "SYMPTRACK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
        "SYMPTRACK_ENVIRONMENT": "production",
        "SYMPTRACK_SECRET_KEY": STRONG_KEY,
        "SYMPTRACK_WEBHOOK_SECRET_KEYS": json.dumps(_PRODUCTION["webhook_secret_keys"]),
        variable: value,
    }
    for command in (["migrate"], ["serve", "--port", "1"]):
        result = subprocess.run(
            [SYMPTRACK, *command], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 1, result.stderr
        # One line, the first the command writes: refused before anything else starts.
        assert result.stderr.startswith("Error: invalid configuration: "), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert variable in result.stderr and "Traceback" not in result.stderr
        assert STRONG_KEY not in result.stderr + result.stdout
    assert not (tmp_path / "prod.db").exists()  # refused before touching anything
