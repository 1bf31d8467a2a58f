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

POSTGRES_URL = "postgresql+asyncpg://symptrack@db:5432/symptrack"


def test_production_refuses_a_missing_or_short_secret() -> None:
    with pytest.raises(ValidationError, match="SYMPTRACK_SECRET_KEY"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(_env_file=None, environment="production", secret_key="short")  # type: ignore[call-arg]
    webhook_keys = [Fernet.generate_key().decode()]  # required in production too (test_webhook_secrets)
    ok = Settings(
        _env_file=None,
        environment="production",
        secret_key=STRONG_KEY,
        webhook_secret_keys=webhook_keys,
        database_url=POSTGRES_URL,  # required in production too (below)
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
    "database_url": POSTGRES_URL,
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


# --- issue 26: production needs PostgreSQL and safe leases; a malformed value is one line ---------


@pytest.mark.parametrize("database_url", [None, "sqlite+aiosqlite:///./var/symptrack.db", "sqlite:///x.db"])
def test_production_refuses_anything_but_postgresql(
    monkeypatch: pytest.MonkeyPatch, database_url: str | None
) -> None:
    monkeypatch.delenv("SYMPTRACK_DATABASE_URL", raising=False)
    production = {key: value for key, value in _PRODUCTION.items() if key != "database_url"}
    if database_url is not None:
        production["database_url"] = database_url
    with pytest.raises(ValidationError, match="SYMPTRACK_DATABASE_URL must be set to a PostgreSQL URL"):
        Settings(_env_file=None, **production)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lease", "renew"),
    [(1, 0.1), (1, 0.3), (1, 2), (3, 0.5), (5, 2.5), (5.9, 2.95)],
)
def test_production_refuses_a_lease_a_late_renewal_would_lapse(lease: float, renew: float) -> None:
    leases = {"webhook_lease_seconds": lease, "webhook_lease_renew_seconds": renew}
    with pytest.raises(ValidationError, match="SYMPTRACK_WEBHOOK_LEASE_SECONDS") as refused:
        Settings(_env_file=None, **{**_PRODUCTION, **leases})  # type: ignore[arg-type]
    assert len(refused.value.errors()) == 1


@pytest.mark.parametrize(("lease", "renew"), [(6, 2), (5, 1), (4.5, 1.5), (30, 10), (3.3, 0.3)])
def test_production_accepts_leases_that_outlast_a_late_renewal(lease: float, renew: float) -> None:
    leases = {"webhook_lease_seconds": lease, "webhook_lease_renew_seconds": renew}
    settings = Settings(_env_file=None, **{**_PRODUCTION, **leases})  # type: ignore[arg-type]
    assert settings.webhook_lease_seconds - settings.webhook_lease_renew_seconds >= 3
    # The defaults among them: 6 s, renewed every 2 s.
    assert Settings(_env_file=None, **_PRODUCTION).webhook_lease_seconds == 6  # type: ignore[arg-type]


def test_development_keeps_short_leases_for_tests() -> None:
    short = Settings(_env_file=None, webhook_lease_seconds=0.3, webhook_lease_renew_seconds=0.1)  # type: ignore[call-arg]
    assert short.webhook_lease_seconds == 0.3


def test_log_level_is_a_real_level_in_any_case() -> None:
    assert Settings(_env_file=None, log_level="debug").log_level == "DEBUG"  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="log_level"):
        Settings(_env_file=None, log_level="LOUD")  # type: ignore[call-arg]


SECRET_LOOKING = "s3cr3t-value-that-must-not-be-echoed"


def _refused(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SYMPTRACK_")}
    env = {
        **inherited,
        "SYMPTRACK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "SYMPTRACK_DATA_DIR": str(tmp_path / "var"),
        **{f"SYMPTRACK_{name}": value for name, value in variables.items()},
    }
    return subprocess.run(
        [SYMPTRACK, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


_PRODUCTION_ENV = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": "postgresql+asyncpg://symptrack@127.0.0.1:1/symptrack",  # refused before any use
    "SECRET_KEY": STRONG_KEY,
    "WEBHOOK_SECRET_KEYS": json.dumps([Fernet.generate_key().decode()]),
}


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"CORS_ORIGINS": "[oops"}, "SYMPTRACK_CORS_ORIGINS"),
        ({"WEBHOOK_SECRET_KEYS": SECRET_LOOKING}, "SYMPTRACK_WEBHOOK_SECRET_KEYS"),
        ({"WEBHOOK_SECRET_KEYS": f'["{SECRET_LOOKING}"]'}, "SYMPTRACK_WEBHOOK_SECRET_KEYS"),
        ({"LOG_LEVEL": "LOUD"}, "SYMPTRACK_LOG_LEVEL"),
        ({"ACCESS_TOKEN_MINUTES": SECRET_LOOKING}, "SYMPTRACK_ACCESS_TOKEN_MINUTES"),
        ({"SHUTDOWN_GRACE_SECONDS": "soon"}, "SYMPTRACK_SHUTDOWN_GRACE_SECONDS"),
        ({"METRICS_TOKEN": "short"}, "SYMPTRACK_METRICS_TOKEN"),
        ({**_PRODUCTION_ENV, "DATABASE_URL": ""}, "SYMPTRACK_DATABASE_URL"),
        ({k: v for k, v in _PRODUCTION_ENV.items() if k != "DATABASE_URL"}, "SYMPTRACK_DATABASE_URL"),
        ({**_PRODUCTION_ENV, "WEBHOOK_LEASE_SECONDS": "1"}, "SYMPTRACK_WEBHOOK_LEASE_SECONDS"),
        (
            {**_PRODUCTION_ENV, "WEBHOOK_LEASE_SECONDS": "1", "WEBHOOK_LEASE_RENEW_SECONDS": "0.1"},
            "SYMPTRACK_WEBHOOK_LEASE_SECONDS",
        ),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_the_command_refuses_a_bad_value_in_one_line_naming_it(
    tmp_path: Path, variables: dict[str, str], named: str
) -> None:
    result = _refused(tmp_path, **variables)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith("Error: invalid configuration: ") and named in line, line
    assert SECRET_LOOKING not in line and "[oops" not in line and "LOUD" not in line
    assert not (tmp_path / "x.db").exists()  # refused before touching anything
