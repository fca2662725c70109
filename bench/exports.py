"""Exports of the demo release: each format and all of them, against DuckDB in the same run.

Issue 6's goal: every export format of the demo release under 30 s. The baseline, measured
in the same process on the same tables: DuckDB writing every table of the release as CSV and
as Parquet (``COPY ... TO``), the floor of "write these rows to disk". Each hub format is
timed on its own (a fresh folder each time, the release's tables read from the database
each time, as ``hub export`` does), then ``all`` (the zip, which writes every format first).

Run: ``.venv/bin/python -m bench.exports [--database-url URL] [--repeat 2]``; without a URL it
builds the demo (``hub demo --no-serve``, about a minute) in a temporary SQLite database.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

from bench.release_build import demo_or
from hub.catalogue import load_catalogue
from hub.db import build_engine
from hub.exports import FORMATS, export_release
from hub.releases import latest_published_release, read_release
from hub.settings import REPO_ROOT

GOAL_SECONDS = 30.0


def _duckdb_seconds(url: str, number: int, folder: Path) -> float:
    """DuckDB writing every table of the release as CSV and Parquet."""
    import duckdb

    engine = build_engine(url)
    with Session(engine) as session:
        tables = read_release(session, number, with_revisions=True)
    engine.dispose()
    connection = duckdb.connect()
    started = time.perf_counter()
    for name, frame in tables.items():
        connection.register("frame", frame)
        connection.execute(f"COPY frame TO '{folder / (name + '.csv')}' (HEADER)")
        connection.execute(f"COPY frame TO '{folder / (name + '.parquet')}' (FORMAT parquet)")
        connection.unregister("frame")
    return time.perf_counter() - started


def _hub_seconds(url: str, number: int, formats: list[str], folder: Path) -> tuple[float, int]:
    engine = build_engine(url)
    catalogue = load_catalogue(REPO_ROOT / "data")
    started = time.perf_counter()
    with Session(engine) as session:
        export = export_release(session, catalogue, number, formats, folder)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, sum(f.size for f in export.files)


def run(url: str, repeat: int) -> None:
    engine = build_engine(url)
    with Session(engine) as session:
        release = latest_published_release(session)
    engine.dispose()
    if release is None:
        raise SystemExit("no published release in the database (run hub demo --no-serve)")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baseline = []
        for attempt in range(repeat):
            (root / f"duck{attempt}").mkdir()
            baseline.append(_duckdb_seconds(url, release.number, root / f"duck{attempt}"))
        floor = statistics.median(baseline)
        print(
            f"release {release.number}; baseline DuckDB CSV + Parquet of every table: {floor:.1f} s (median of {repeat})"
        )
        print("| format | seconds (median) | MB written | / DuckDB |")
        print("|---|---|---|---|")
        for fmt in [f for f in FORMATS if f != "zip"] + ["all"]:
            chosen = list(FORMATS) if fmt == "all" else [fmt]
            times, size = [], 0
            for attempt in range(repeat):
                seconds, size = _hub_seconds(url, release.number, chosen, root / f"{fmt}{attempt}")
                times.append(seconds)
            middle = statistics.median(times)
            print(f"| {fmt} | {middle:.1f} | {size / 1e6:,.0f} | {middle / floor:.1f}x |", flush=True)
            if fmt == "all":
                verdict = "met" if middle < GOAL_SECONDS else "missed"
                print(f"goal: every format under {GOAL_SECONDS:.0f} s: {verdict} ({middle:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", help="a hub database with a published release (default: build the demo)"
    )
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    with demo_or(args.database_url) as url:
        run(url, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
