"""One engine per process and short, explicit sessions.

SQLite is the embedded default: every connection gets foreign keys, WAL and a busy
timeout. PostgreSQL is reached through the same URL setting (``HUB_DATABASE_URL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from hub.settings import Settings, get_settings

_engines: dict[str, Engine] = {}


def normalise_url(url: str) -> str:
    """Use psycopg 3 for bare ``postgresql://`` URLs (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def build_engine(url: str, *, busy_timeout_ms: int = 5000) -> Engine:
    """A new engine for ``url`` with the hub's connection rules; prefer :func:`get_engine`."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
        )
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        return engine
    # UTC sessions: date arithmetic in SQL (e.g. quarters of arrival) must not follow the
    # server's time zone.
    return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})


def get_engine(settings: Settings | None = None) -> Engine:
    """The process's engine for the configured database (created on first use)."""
    settings = settings or get_settings()
    url = normalise_url(settings.database_url)
    if url not in _engines:
        _engines[url] = build_engine(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    return _engines[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a process forks)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A short unit of work: commit on success, roll back on any error."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
