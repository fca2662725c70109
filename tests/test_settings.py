"""The typed settings object refuses unsafe production defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.settings import DEV_SECRET_KEY, Settings


def test_defaults_are_development_on_embedded_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HUB_ENV", "HUB_DATABASE_URL", "HUB_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.env == "development"
    assert settings.is_sqlite and settings.database_url.endswith("var/hub.sqlite3")
    assert settings.host == "127.0.0.1"


def test_production_refuses_default_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ENV", "production")
    monkeypatch.delenv("HUB_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="HUB_SECRET_KEY"):
        Settings()


def test_production_refuses_short_secret_key() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", secret_key="short")


def test_production_accepts_a_real_secret_and_refuses_the_development_one() -> None:
    assert Settings(env="production", secret_key="x" * 48).env == "production"
    with pytest.raises(ValidationError, match="HUB_SECRET_KEY"):
        Settings(env="production", secret_key=DEV_SECRET_KEY)


def test_embedded_database_lives_in_var_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path))
    assert Settings().database_url == f"sqlite:///{tmp_path / 'hub.sqlite3'}"


def test_environment_variables_are_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_PORT", "8123")
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    settings = Settings()
    assert settings.port == 8123
    assert not settings.is_sqlite


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()
    monkeypatch.setenv("HUB_PORT", "70000")
    with pytest.raises(ValidationError):
        Settings()
