"""Fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL is 127.0.0.1:5432 (user postgres, database test) or HUB_TEST_DATABASE_URL.
Each test gets its own database cloned from a migrated template. When CI=true a
missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from hub import migrate
from hub.catalogue import Catalogue, load_catalogue
from hub.db import build_engine, session_scope
from hub.services import load_reference_data
from hub.settings import REPO_ROOT, Settings

PG_ADMIN_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
PUBLIC_DATA = Path(os.environ.get("HUB_PUBLIC_DATA_DIR", REPO_ROOT.parent / "shared" / "public-data"))
BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests (marker ``longest``: minutes each) first on their own workers.

    Under ``--dist worksteal`` (the Makefile's), each of N workers starts on one of N equal,
    consecutive slices of the collection, and an idle worker later takes half of the busiest
    one's remaining tests. The longest tests go to the head of the first slices; started at
    the end instead, the demo test alone (minutes) would set the suite's wall time. The other
    tests keep their order, so module fixtures are mostly built once per worker. Only xdist
    workers collect, and all sort alike."""
    longest = [item for item in items if item.get_closest_marker("longest")]
    ordered = [item for item in items if not item.get_closest_marker("longest")]
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    slice_length = len(items) // workers if workers > 1 else 1
    for position, item in enumerate(longest):
        ordered.insert(min(position * slice_length, len(ordered)), item)
    items[:] = ordered


def _worker() -> str:
    """This checkout and xdist worker: parallel runs from two checkouts never share a database name."""
    checkout = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:6]
    return f"{checkout}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def _pg_admin() -> Engine:
    return build_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")  # type: ignore[return-value]


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        engine = _pg_admin()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """Name of a migrated PostgreSQL template database, or None when PostgreSQL is absent."""
    reason = _pg_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {reason}")
        yield None
        return
    name = f"hub_template_{_worker()}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name)
    engine = build_engine(url.render_as_string(hide_password=False))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = build_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _test_settings(database_url: str, var_dir: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=REPO_ROOT / "data",
        public_data_dir=PUBLIC_DATA,
        var_dir=var_dir,
    )


def _load_reference(url: str, var_dir: Path) -> None:
    engine = build_engine(url)
    with session_scope(engine) as session:
        load_reference_data(session, _test_settings(url, var_dir), load_catalogue(REPO_ROOT / "data"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_loaded_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated SQLite template plus the reference data (metrics, public-source organisations)."""
    folder = tmp_path_factory.mktemp("loaded-template")
    path = folder / "loaded.sqlite3"
    shutil.copyfile(sqlite_template, path)
    _load_reference(f"sqlite:///{path}", folder / "var")
    engine = build_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_loaded_template(
    pg_template: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str | None]:
    """A PostgreSQL template like ``pg_template`` plus the reference data."""
    if pg_template is None:
        yield None
        return
    name = f"{pg_template}_loaded"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _load_reference(url, tmp_path_factory.mktemp("pg-loaded") / "var")
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database of each backend: empty, or, for a test that asks for
    ``loaded_engine`` (or ``session``), cloned from a template that already holds the reference data."""
    loaded = bool({"loaded_engine", "session"} & set(request.fixturenames))
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_loaded_template" if loaded else "sqlite_template")
        path = tmp_path / "hub.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    pg_template = request.getfixturevalue("pg_loaded_template" if loaded else "pg_template")
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    name = f"hubtest_{_worker()}_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return _test_settings(database_url, tmp_path / "var")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = build_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(REPO_ROOT / "data")


@pytest.fixture
def loaded_engine(engine: Engine) -> Engine:
    """A database with the metric definitions and the public-source organisations loaded
    (``database_url`` cloned it from the loaded template, once per session and backend)."""
    return engine


@pytest.fixture
def session(loaded_engine: Engine) -> Iterator[Session]:
    """A session on a loaded database; the test commits what it wants kept."""
    with Session(loaded_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the ``hub`` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_ENV="test",
        HUB_DATABASE_URL=settings.database_url,
        HUB_PUBLIC_DATA_DIR=str(PUBLIC_DATA),
        HUB_VAR_DIR=str(settings.var_dir),
    )
    return env
