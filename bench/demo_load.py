"""Time ``hub demo --no-serve`` on an empty database, on SQLite and PostgreSQL.

Baseline, measured in the same run on the same database: inserting the very same
observation rows again with one plain ``executemany`` in one transaction (no validation,
no versioning, no generation), i.e. the floor any loader of that data has to pay.
Run: ``.venv/bin/python -m bench.demo_load [--backend sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from hub.db import build_engine
from hub.settings import REPO_ROOT

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
PG_ADMIN = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _run_demo(url: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = url
    started = time.perf_counter()
    subprocess.run([HUB, "demo", "--no-serve"], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def _baseline(engine: Engine) -> tuple[int, float]:
    """Copy every observation row into an empty twin table with one executemany."""
    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM observation"))]
        conn.execute(text("CREATE TABLE bench_twin AS SELECT * FROM observation WHERE 1 = 0"))
    columns = list(rows[0])
    insert = text(
        f"INSERT INTO bench_twin ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    )
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert, rows)
    elapsed = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_twin"))
    return len(rows), elapsed


Run = tuple[str, int, float, float, float]


def _measure(backend: str, url: str) -> Run:
    """First load, second load (stores nothing new), then the baseline on the same rows."""
    first = _run_demo(url)
    again = _run_demo(url)
    engine = build_engine(url)
    count, base = _baseline(engine)
    engine.dispose()
    return backend, count, first, again, base


def bench_sqlite() -> Run:
    with tempfile.TemporaryDirectory() as folder:
        return _measure("sqlite", f"sqlite:///{Path(folder) / 'hub.sqlite3'}")


def bench_postgresql() -> Run:
    name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    admin = build_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        return _measure("postgresql", url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    runs = []
    if args.backend in {"sqlite", "both"}:
        runs.append(bench_sqlite())
    if args.backend in {"postgresql", "both"}:
        runs.append(bench_postgresql())
    print("backend     observations  first load  second load  bare executemany  first/baseline")
    for backend, count, first, again, base in runs:
        print(
            f"{backend:<11} {count:>12,}  {first:>8.1f} s  {again:>9.1f} s  {base:>14.2f} s  {first / base:>13.1f}x"
        )


if __name__ == "__main__":
    main()
