"""All configuration in one place, read from SYMPTRACK_* environment variables or a .env file.

The clinical product defaults of CLINICAL.md live here too, with the values that file gives, so an
operator can change them and nothing else in the code carries a bare number.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "development-only-secret-change-me"  # noqa: S105 - refused outside development
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/symptrack.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYMPTRACK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )
    # A refused value must not be printed back: errors would show keys and secrets.
    model_config["hide_input_in_errors"] = True

    environment: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    # Signs access tokens. Must be set to a long random value outside development.
    secret_key: str = DEVELOPMENT_SECRET_KEY
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    enrollment_code_days: int = Field(default=7, ge=1, le=90)
    # Failed sign-ins allowed per account and per client address within the window, then 429.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # Requests allowed per minute per access token and per client address, then 429 (0: no limit).
    rate_limit_per_token_per_minute: int = Field(default=600, ge=0)
    rate_limit_per_address_per_minute: int = Field(default=3000, ge=0)
    # Where counters shared by every API process live: Redis when set, else the database.
    redis_url: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    log_level: str = "INFO"
    # PostgreSQL connection pool per process.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    # SQLite waits this long for a lock held by another connection before failing.
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    # Where the Alembic scripts are; the default is the checkout this package runs from.
    migrations_dir: Path = Path(__file__).resolve().parent.parent / "alembic"

    # Entries stamped further ahead than this are refused (phones' clocks drift a little).
    future_tolerance_minutes: int = Field(default=10, ge=0)

    # Webhook delivery (API.md "Configuration an operator relies on").
    webhook_allow_http: bool = False
    webhook_allow_private_networks: bool = False
    # A send that takes longer has failed; the claim lease outlives it a little, so a crashed
    # worker's delivery is sent again about a minute later.
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_disable_after_days: int = Field(default=5, ge=1)
    # Fernet keys that encrypt webhook signing secrets at rest, a JSON list: the first encrypts, all
    # decrypt (rotation: README). Required outside development; there, derived from secret_key.
    webhook_secret_keys: list[str] = Field(default_factory=list)

    # Product defaults from CLINICAL.md ("product default" there). Change only with the clinical lead.
    gad7_interval_days: int = Field(default=14, ge=1)
    abrupt_stop_days: int = Field(default=2, ge=1)
    persistent_symptom_min_days: int = Field(default=3, ge=1)
    persistent_symptom_window_days: int = Field(default=7, ge=1)
    persistent_symptom_min_grade: int = Field(default=2, ge=0, le=3)
    missed_check_in_days: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.environment != "development":
            if self.secret_key == DEVELOPMENT_SECRET_KEY:
                raise ValueError(
                    "SYMPTRACK_SECRET_KEY must be set outside development to a long random value, "
                    "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            if len(self.secret_key) < 32:
                raise ValueError("SYMPTRACK_SECRET_KEY must be at least 32 characters")
        return self

    @model_validator(mode="after")
    def _check_webhook_secret_keys(self) -> Settings:
        for key in self.webhook_secret_keys:
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    "SYMPTRACK_WEBHOOK_SECRET_KEYS must be a JSON list of Fernet keys, each from `python -c "
                    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
                ) from None
        if self.environment != "development" and not self.webhook_secret_keys:
            raise ValueError(
                "SYMPTRACK_WEBHOOK_SECRET_KEYS must be set outside development: it encrypts the webhook "
                "signing secrets stored in the database (README: Configuration)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
