"""All configuration in one place, read from SYMPTRACK_* environment variables or a .env file.

The clinical product defaults of CLINICAL.md live here too, with the values that file gives, so an
operator can change them and nothing else in the code carries a bare number.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.platform import local_secret

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/symptrack.db"
# A webhook lease lasts at least this many renewal intervals: two renewals may come late in a row.
LEASE_RENEWALS = 3
# In production a lease must also outlast one renewal by this much: a renewal that lands later than
# `lease - renew interval` after the previous one lets another worker send a delivery still in flight.
# Such delays are absolute, not a share of the interval (a renewal waiting for a pool connection, a
# database failover, an event loop held by a heavy read, clocks of two machines apart): a 1 s lease is
# refused whatever its renewal interval. The defaults (6 s, renewed every 2 s) allow 4 s.
LEASE_RENEWAL_DELAY_SECONDS = 3.0
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# Six years (45 CFR 164.316(b)(2)): audit rows are never deleted sooner.
AUDIT_RETENTION_MIN_DAYS = 6 * 365


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYMPTRACK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )
    # A refused value must not be printed back: errors would show keys and secrets.
    model_config["hide_input_in_errors"] = True

    environment: Literal["development", "production"] = "development"
    # SQLite by default (one process, one file); production refuses anything but PostgreSQL.
    database_url: str = DEFAULT_DATABASE_URL
    # Signs access tokens. Required (32+ characters) outside development; in development, when unset,
    # a random key is made once and kept in data_dir/secret_key (services/platform/local_secret.py).
    secret_key: str = ""
    # Local files of a development install (the generated secret key).
    data_dir: Path = Path("var")
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    enrollment_code_days: int = Field(default=7, ge=1, le=90)
    # Failed sign-ins allowed per account and per client address within the window, then 429.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    # ... and per device that shows a device token of the account (it is not counted on the account).
    login_max_failures_per_device: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # Requests allowed per minute per access token and per client address, then 429 (0: no limit).
    rate_limit_per_token_per_minute: int = Field(default=600, ge=0)
    rate_limit_per_address_per_minute: int = Field(default=3000, ge=0)
    # Fair shares (api/fair_share.py). Doses and sync batches in flight at once per process, and per
    # caller; more wait their turn, so an urgent check-in does not queue behind them. 0: no limit.
    bulk_write_slots: int = Field(default=8, ge=0)
    bulk_write_slots_per_caller: int = Field(default=2, ge=0)
    # Heavy reads (report, CSV, FHIR, long summaries, big panel pages) in flight at once per process,
    # and per caller; more wait their turn, so one caller's reports do not slow everyone. They are
    # CPU on the one event loop: more at once add no throughput, only everyone's wait. 0: no limit.
    heavy_read_slots: int = Field(default=2, ge=0)
    heavy_read_slots_per_caller: int = Field(default=1, ge=0)
    # How long a request waits for its slots (holding no database connection), then 429.
    fair_share_wait_seconds: float = Field(default=10.0, gt=0, le=300)
    # Rate-limit and sign-in counters: in Redis when set (shared by every API process), else in each
    # process's memory. Several processes (`serve --workers N`, several hosts) need Redis to share them.
    redis_url: str | None = None
    # How long a Redis connect or answer may take before Redis counts as down (default 0.5 s): then
    # sign-in and enrollment answer 503 at once and rate limits let requests through, instead of
    # every request waiting on a hung Redis. Redis answers in well under a millisecond when well.
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    # How long a process trusts what it read about a session (revoked or not, the user's role and
    # scope) before asking again. Revocations reach every process at once (NOTIFY); this bounds the
    # staleness only if one is missed. 0: every request asks the database.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Keys in Redis start with this, so deployments sharing one Redis keep their counts apart.
    redis_key_prefix: str = "symptrack:"
    cors_origins: list[str] = Field(default_factory=list)
    # GET /metrics: this bearer token when set; unset, loopback clients only (not through a proxy).
    metrics_token: SecretStr | None = None
    # Proxies whose X-Forwarded-For uvicorn believes (comma-separated addresses or networks, "*" for
    # any); empty: none, so no client can choose the address the throttles and rate limits count.
    forwarded_allow_ips: str = ""
    # DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
    log_level: LogLevel = "INFO"
    # On SIGTERM `symptrack serve` answers /readyz 503 at once and goes on serving this long, so a
    # load balancer sees it leave before it stops accepting; then it finishes the requests in flight
    # and exits 0 (a second SIGTERM, or SIGINT, ends the wait at once). 0: stop at once.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    # PostgreSQL connection pool per process. The LISTEN connections are outside it: one per API
    # process (the caller cache, unless SYMPTRACK_AUTH_CACHE_SECONDS=0) and one per worker (an
    # in-process one too). PostgreSQL's max_connections must cover, over every process,
    # db_pool_size + db_max_overflow + its LISTEN connections, plus the migrations and an operator.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    # How long a request waits for a database connection (a free one from the pool, or a new one
    # from the server) before it answers 503 with Retry-After (default 3 s), rather than queueing
    # behind a stuck or overloaded database until the client gives up.
    db_pool_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    # SQLite waits this long for a lock held by another connection before failing.
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    # Where the Alembic scripts are: the checkout this package runs from, or the copy an installed
    # package carries (pyproject.toml puts alembic/ into the wheel). Change it only to run another
    # copy of the migrations than the one installed.
    migrations_dir: Path = Field(default_factory=lambda: _default_migrations_dir())

    # Entries stamped further ahead than this are refused (phones' clocks drift a little).
    future_tolerance_minutes: int = Field(default=10, ge=0)

    # Webhook delivery (API.md "Configuration an operator relies on").
    webhook_allow_http: bool = False
    webhook_allow_private_networks: bool = False
    # A send that takes longer has failed.
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    # A claimed delivery is held this long, and a live worker renews the hold of each send it has in
    # flight every webhook_lease_renew_seconds, however long the send takes: a worker that stops
    # (killed, its machine gone) holds nothing longer than the lease, and its sends go again
    # (services/alerting/delivery.py). The lease must outlast two renewals missed in a row.
    webhook_lease_seconds: float = Field(default=6.0, gt=0)
    webhook_lease_renew_seconds: float = Field(default=2.0, ge=0.1)
    # Sends in flight to one endpoint at once, across every worker: a receiver that answers slowly
    # (or not at all, until the timeout) holds no more of a worker's 32 sending slots. One that
    # answers in 2 s takes 6 alerts a second, and still 3 while a killed worker's leases hold half
    # the share (until they run out).
    webhook_endpoint_in_flight: int = Field(default=12, ge=1)
    webhook_disable_after_days: int = Field(default=5, ge=1)
    # The worker touches this file after every round of work (unset: no file); a container health
    # check reads its age (docker-compose.yml).
    worker_heartbeat_file: Path | None = None
    # Fernet keys that encrypt webhook signing secrets at rest, a JSON list: the first encrypts, all
    # decrypt (rotation: README). Required outside development; there, derived from secret_key.
    webhook_secret_keys: list[str] = Field(default_factory=list)

    # Retention (services/platform/retention.py), in days; 0 keeps forever. The worker deletes, in
    # small batches: outbox events older than this whose every delivery succeeded, with those
    # deliveries (90: an incident review of "did the pager hear it" comes within weeks; the flag keeps
    # its own history, and a pending, failed or dead delivery and its event are never deleted) ...
    retention_outbox_days: int = Field(default=90, ge=0)
    # ... webhook delivery attempts older than this (30: they only serve to debug a receiver, and the
    # delivery keeps its last status and error; the 2 KiB response bodies are most of the volume) ...
    retention_attempts_days: int = Field(default=30, ge=0)
    # ... and audit rows older than this: 6 years, HIPAA's documentation retention (45 CFR
    # 164.316(b)(2)); less is refused (0 keeps forever).
    retention_audit_days: int = Field(default=AUDIT_RETENTION_MIN_DAYS, ge=0)

    # Product defaults from CLINICAL.md ("product default" there). Change only with the clinical lead.
    gad7_interval_days: int = Field(default=14, ge=1)
    abrupt_stop_days: int = Field(default=2, ge=1)
    persistent_symptom_min_days: int = Field(default=3, ge=1)
    persistent_symptom_window_days: int = Field(default=7, ge=1)
    persistent_symptom_min_grade: int = Field(default=2, ge=0, le=3)
    missed_check_in_days: int = Field(default=3, ge=1)
    # above_prescribed: a local day's taken total this many percent or more above the regimen's scheduled
    # daily total, on at least min_days of the last window_days local days.
    above_prescribed_percent: float = Field(default=50.0, gt=0)
    above_prescribed_min_days: int = Field(default=2, ge=1)
    above_prescribed_window_days: int = Field(default=7, ge=1, le=31)
    # An urgent flag still open this long after it was opened or reopened sends flag.unacknowledged.
    unacknowledged_alert_minutes: float = Field(default=30.0, gt=0)
    # Evidence that happened this long before it reached the server says so in the flag's reason.
    late_evidence_hours: float = Field(default=24.0, gt=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_in_any_case(cls, level: object) -> object:
        return level.strip().upper() if isinstance(level, str) else level

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_strong_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is None or not token.get_secret_value():
            return None  # an empty value is unset: loopback clients only
        if len(token.get_secret_value()) < 16:
            raise ValueError("SYMPTRACK_METRICS_TOKEN must be at least 16 characters")
        return token

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.environment != "development":
            if not self.secret_key.strip():
                raise ValueError(
                    "SYMPTRACK_SECRET_KEY must be set outside development to a long random value, "
                    "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            if len(self.secret_key) < local_secret.MIN_KEY_LENGTH:
                raise ValueError("SYMPTRACK_SECRET_KEY must be at least 32 characters")
            bits = local_secret.estimated_bits(self.secret_key)
            if bits < local_secret.MIN_KEY_BITS:
                # The estimate, never the key: the message reaches logs and terminals.
                raise ValueError(
                    f"SYMPTRACK_SECRET_KEY is too guessable: about {bits:.0f} bits by a simple estimate "
                    f"(its characters' entropy, its compressed size), {local_secret.MIN_KEY_BITS} "
                    "needed; make one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
        elif not self.secret_key.strip():
            self.secret_key = local_secret.load_or_create(self.data_dir)
        return self

    @model_validator(mode="after")
    def _above_prescribed_days_fit_the_window(self) -> Settings:
        if self.above_prescribed_min_days > self.above_prescribed_window_days:
            raise ValueError(
                "SYMPTRACK_ABOVE_PRESCRIBED_MIN_DAYS must not exceed SYMPTRACK_ABOVE_PRESCRIBED_WINDOW_DAYS"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_switches_in_production(self) -> Settings:
        """Switches for tests and local setups that production must never run with: each is named, so
        the operator knows which variable to unset."""
        if self.environment == "development":
            return self
        problems = []
        if self.webhook_allow_http:
            problems.append(
                "SYMPTRACK_WEBHOOK_ALLOW_HTTP must be false in production: alerts would leave unencrypted"
            )
        if self.webhook_allow_private_networks:
            problems.append(
                "SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS must be false in production: an admin could aim "
                "webhooks at the internal network (SSRF)"
            )
        if database_backend(self.database_url) != "postgresql":
            problems.append(
                "SYMPTRACK_DATABASE_URL must be set to a PostgreSQL URL in production "
                "(postgresql+asyncpg://user:password@host:5432/name): SQLite serves one process on one disk"
            )
        if any("*" in origin for origin in self.cors_origins):
            problems.append(
                'SYMPTRACK_CORS_ORIGINS must not contain "*" in production: list the browser origins '
                'allowed to call the API, e.g. ["https://app.clinic.example"]'
            )
        if problems:
            raise ValueError("; ".join(problems))
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

    @field_validator("retention_audit_days")
    @classmethod
    def _audit_kept_six_years(cls, days: int) -> int:
        if 0 < days < AUDIT_RETENTION_MIN_DAYS:
            raise ValueError(
                "SYMPTRACK_RETENTION_AUDIT_DAYS must be 0 (keep forever) or at least "
                f"{AUDIT_RETENTION_MIN_DAYS}: HIPAA keeps documentation six years (45 CFR 164.316(b)(2))"
            )
        return days

    @model_validator(mode="after")
    def _check_webhook_lease(self) -> Settings:
        # (A margin for floating point: 0.3 is three times 0.1.)
        if self.webhook_lease_seconds < LEASE_RENEWALS * self.webhook_lease_renew_seconds - 1e-9:
            raise ValueError(
                f"SYMPTRACK_WEBHOOK_LEASE_SECONDS ({self.webhook_lease_seconds:g}) must be at least "
                f"{LEASE_RENEWALS} times SYMPTRACK_WEBHOOK_LEASE_RENEW_SECONDS "
                f"({self.webhook_lease_renew_seconds:g}): a live worker renews its leases that often, and "
                "one that lapses after a single late renewal lets another worker send the delivery again"
            )
        slack = self.webhook_lease_seconds - self.webhook_lease_renew_seconds
        if self.environment != "development" and slack < LEASE_RENEWAL_DELAY_SECONDS - 1e-9:
            raise ValueError(
                f"SYMPTRACK_WEBHOOK_LEASE_SECONDS ({self.webhook_lease_seconds:g}) must exceed "
                f"SYMPTRACK_WEBHOOK_LEASE_RENEW_SECONDS ({self.webhook_lease_renew_seconds:g}) by at least "
                f"{LEASE_RENEWAL_DELAY_SECONDS:g} s in production: a renewal that comes later than that "
                "(waiting for a database connection, a failover) lets another worker send a delivery "
                "that is still being sent"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def database_backend(url: str) -> str:
    """The database a URL names ("postgresql", "sqlite", ...), without reading anything else of it."""
    return url.split(":", 1)[0].split("+", 1)[0].strip().lower()


def _default_migrations_dir() -> Path:
    checkout = Path(__file__).resolve().parent.parent / "alembic"
    if (checkout / "env.py").exists():
        return checkout
    return Path(__file__).resolve().parent / "platform" / "migration_scripts"


@lru_cache
def get_settings() -> Settings:
    return Settings()
