"""Settings refuse unsafe defaults and carry CLINICAL.md's product defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.settings import Settings


def test_production_refuses_a_missing_or_short_secret() -> None:
    with pytest.raises(ValidationError, match="SYMPTRACK_SECRET_KEY"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(_env_file=None, environment="production", secret_key="short")  # type: ignore[call-arg]
    webhook_keys = [Fernet.generate_key().decode()]  # required in production too (test_webhook_secrets)
    ok = Settings(
        _env_file=None, environment="production", secret_key="s" * 40, webhook_secret_keys=webhook_keys
    )  # type: ignore[call-arg]
    assert ok.secret_key == "s" * 40


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
