"""The hub's one typed settings object, read from ``HUB_*`` environment variables.

Validated at start-up: a production hub refuses to run with development defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - refused in production


class Settings(BaseSettings):
    """Every knob of the hub; one instance per process (see :func:`get_settings`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; SQLite in var_dir (embedded default) or postgresql+psycopg://...",
    )
    secret_key: str = DEV_SECRET_KEY
    data_dir: Path = REPO_ROOT / "data"
    public_data_dir: Path = REPO_ROOT.parent / "shared" / "public-data"
    var_dir: Path = Field(
        default=REPO_ROOT / "var", description="The hub's own files: the embedded database, kept uploads"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=1, le=65535)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    demo_seed: int = 20121205  # the Global Alliance was launched on 5 December 2012
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # signed-in sessions (issue 5): ended after this long without a request, and this long after sign-in
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=7 * 24)

    # ingest (issue 3)
    retention_days: int = Field(
        default=90, ge=0, description="Days an original submitted file is kept for reprocessing"
    )
    max_upload_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest file accepted by upload, API or pull"
    )
    api_rate_per_minute: int = Field(default=120, ge=1, description="API requests per token per minute")
    api_rate_per_minute_per_address: int = Field(
        default=300, ge=1, description="API requests per client address per minute"
    )
    token_days: int = Field(default=365, ge=1, le=3650, description="Default lifetime of an API token")
    connector_timeout_seconds: float = Field(default=30.0, gt=0)
    connector_retries: int = Field(default=3, ge=0, le=10)
    connector_allow_http: bool = Field(
        default=False, description="Allow plain http:// feeds (tests and closed networks only)"
    )

    # coordination: reporting calendar and reminders
    reporting_due_days: int = Field(default=30, ge=0, le=366)
    smtp_host: str = ""  # empty: reminders stay queued, nothing is sent
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    smtp_sender: str = "hub@alliance.invalid"

    # scheduled outputs (hub/schedules.py, `hub scheduler`)
    schedules_file: Path = Field(
        default=REPO_ROOT / "data" / "schedules.yaml", description="Configured jobs (YAML); none if absent"
    )
    alert_email: str = Field(default="", description="The secretariat's functional mailbox for failed jobs")
    schedule_email_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    @model_validator(mode="before")
    @classmethod
    def _embedded_database_in_var_dir(cls, values: Any) -> Any:
        """No HUB_DATABASE_URL: the embedded SQLite database lives in var_dir."""
        if isinstance(values, dict) and not values.get("database_url"):
            var_dir = Path(values.get("var_dir") or REPO_ROOT / "var")
            values = {**values, "database_url": f"sqlite:///{var_dir / 'hub.sqlite3'}"}
        return values

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("HUB_SECRET_KEY must be set to a random value of at least 32 characters")
        if self.host not in {"127.0.0.1", "::1", "localhost"} and self.port == 8050:
            problems.append("HUB_HOST exposes the development port; run behind a proxy")
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
