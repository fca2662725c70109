"""A fresh, empty database for a benchmark run: a SQLite file, or a PostgreSQL database on
127.0.0.1 created for the run and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from hub.db import build_engine

PG_ADMIN = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def empty_database(backend: str, folder: Path, *, name: str) -> Iterator[str]:
    """URL of a fresh empty database of ``backend`` (``name`` prefixes the file or database)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{name}.sqlite3'}"
        return
    database = f"hub_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = build_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield make_url(PG_ADMIN).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
