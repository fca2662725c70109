"""Benchmark: event-file ingest (read_events_csv + reduce_events) against DuckDB on the same file.

Issue 3 section 8 asks for >= 1 million rows/s, within 3x of DuckDB's bare ``read_csv`` plus a
group-by of the same counts, and peak memory under 4 GB. The file is generated once (seeded)
into /tmp by a child process, so generation does not count towards the measured peak memory.

    python -m bench.ingest_events               # 10,000,000 rows (~1 GB)
    python -m bench.ingest_events --rows 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from hub.catalogue import Catalogue, load_catalogue
from hub.settings import REPO_ROOT
from ingest.events import COLUMNS, read_events_csv, reduce_events

SEED = 20250301
CHUNK = 1_000_000
SOURCES = (
    ["proactive_detection", "user_report", "trusted_flagger", "hotline", "law_enforcement"],
    [0.6, 0.25, 0.07, 0.05, 0.03],
)
CATEGORIES = (
    [
        "csam",
        "csam_other_indecent",
        "self_generated_csam",
        "ai_generated_csam",
        "grooming_enticement",
        "sextortion",
    ],
    [0.45, 0.2, 0.15, 0.05, 0.1, 0.05],
)
CONTENT = (
    ["image", "video", "url", "text", "livestream", "account", "other"],
    [0.45, 0.25, 0.12, 0.08, 0.02, 0.05, 0.03],
)
COUNTRIES = [
    "US",
    "NL",
    "DE",
    "FR",
    "GB",
    "RU",
    "UA",
    "CA",
    "SE",
    "BG",
    "RO",
    "LV",
    "LT",
    "PL",
    "CZ",
    "SK",
    "HU",
    "IT",
    "ES",
    "PT",
    "IE",
    "BR",
    "MX",
    "JP",
    "KR",
    "TH",
    "IN",
    "ZA",
    "NG",
    "KE",
    "NA",
    "AU",
    "NZ",
    "SG",
    "HK",
    "CN",
    "TR",
    "ZZ",
]
OFFSETS = ["+00:00", "+01:00", "+02:00", "-05:00", "-08:00", "+05:30", "+09:00", "Z"]


def default_path(rows: int) -> Path:
    return Path("/tmp") / f"csea_hub_events_{rows}.csv"


def _pick(rng: np.random.Generator, choice: tuple[list[str], list[float]], n: int) -> pa.Array:
    values, weights = choice
    index = rng.choice(len(values), size=n, p=np.asarray(weights) / sum(weights))
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(values)).cast(
        pa.string()
    )


def _iso(utc_seconds: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """Local ISO 8601 text with its offset, built columnar (the same instant in UTC)."""
    minutes = np.array([0, 60, 120, -300, -480, 330, 540, 0], dtype=np.int64)[offsets]
    local = pa.array((utc_seconds + minutes * 60).astype("datetime64[s]"))
    text = pc.strftime(local, format="%Y-%m-%dT%H:%M:%S")
    suffix = pa.DictionaryArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(OFFSETS)).cast(
        pa.string()
    )
    return pc.binary_join_element_wise(text, suffix, "")


def _chunk(rng: np.random.Generator, first: int, n: int) -> pa.Table:
    start = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    received = start + rng.integers(0, 365 * 86400, size=n)
    # Log-normal takedown times: median about 2 hours, tails from seconds to months.
    elapsed = np.minimum(np.exp(rng.normal(np.log(7200), 2.5, size=n)), 200 * 86400).astype(np.int64)
    state = rng.random(n)
    pending = state < 0.07
    closed = (state >= 0.07) & (state < 0.15)
    outcome = np.where(pending, 5, np.where(closed, rng.integers(2, 5, size=n), rng.integers(0, 2, size=n)))
    outcomes = pa.DictionaryArray.from_arrays(
        pa.array(outcome.astype(np.int32)),
        pa.array(["removed", "access_disabled", "not_illegal", "not_found", "referred", "pending"]),
    ).cast(pa.string())
    offsets = rng.integers(0, len(OFFSETS), size=n)
    actioned = pc.if_else(
        pa.array(pending), "", _iso(received + elapsed, rng.integers(0, len(OFFSETS), size=n))
    )
    refs = pc.binary_join_element_wise("c", pc.cast(pa.array(np.arange(first, first + n)), pa.string()), "")
    return pa.table(
        {
            "case_ref": refs,
            "notice_source": _pick(rng, SOURCES, n),
            "category": _pick(rng, CATEGORIES, n),
            "content_type": _pick(rng, CONTENT, n),
            "hosting_country": pa.array(rng.choice(COUNTRIES, size=n)),
            "received_at": _iso(received, offsets),
            "actioned_at": actioned,
            "outcome": outcomes,
        }
    )


def generate(path: Path, rows: int) -> None:
    """Write ``rows`` seeded, realistic event records to ``path`` in chunks (bounded memory)."""
    rng = np.random.default_rng(SEED)
    partial = path.with_suffix(".partial")
    schema = pa.schema([(name, pa.string()) for name in COLUMNS])
    options = pacsv.WriteOptions(quoting_style="none")
    with pacsv.CSVWriter(partial, schema, write_options=options) as writer:
        for first in range(0, rows, CHUNK):
            writer.write_table(_chunk(rng, first, min(CHUNK, rows - first)).cast(schema))
    partial.rename(path)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def hub_path(path: Path, catalogue: Catalogue) -> tuple[float, float, int, int, int]:
    """Seconds in total and for reading, rows, observations and error rows of read + reduce."""
    started = time.perf_counter()
    table = read_events_csv(path)
    read_s = time.perf_counter() - started
    result = reduce_events(table, catalogue=catalogue, stakeholder_type="company")
    seconds = time.perf_counter() - started
    return seconds, read_s, result.rows, len(result.observations), sum(result.error_counts.values())


def duckdb_baseline(path: Path, catalogue: Catalogue) -> tuple[float, int]:
    """Seconds and groups of DuckDB's read_csv + GROUP BY (period, dims, bucket) on the same file."""
    import duckdb

    edges = [e * 60_000_000 for e in catalogue.buckets.edges_minutes]
    whens = " ".join(f"WHEN us < {edge} THEN {i}" for i, edge in enumerate(edges))
    not_actioned = len(edges) + 1
    query = f"""
        WITH e AS (
            SELECT notice_source, category, content_type, hosting_country, outcome, actioned_at,
                   CAST(received_at AS TIMESTAMPTZ) AS r,
                   CAST(NULLIF(actioned_at, '') AS TIMESTAMPTZ) AS a
            FROM read_csv('{path}', all_varchar = true, header = true)
        ), t AS (
            SELECT *, date_diff('microsecond', r, a) AS us FROM e
        )
        SELECT date_trunc('month', CAST(r AS TIMESTAMP)) AS period,
               notice_source, category, content_type, hosting_country,
               CASE WHEN coalesce(actioned_at, '') = '' THEN {not_actioned}
                    WHEN outcome NOT IN ('removed', 'access_disabled') THEN -1
                    {whens} ELSE {len(edges)} END AS bucket,
               count(*) AS n
        FROM t GROUP BY ALL
    """
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    groups = len(connection.execute(query).fetchall())
    return time.perf_counter() - started, groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in the generated file")
    parser.add_argument("--path", type=Path, help="event file (default /tmp/csea_hub_events_<rows>.csv)")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path: Path = args.path or default_path(args.rows)
    if args.generate_only:
        generate(path, args.rows)
        return 0
    if not path.exists():
        print(f"generating {args.rows:,} rows into {path} ...", flush=True)
        started = time.perf_counter()
        command = [sys.executable, "-m", "bench.ingest_events", "--rows", str(args.rows), "--path", str(path)]
        subprocess.run([*command, "--generate-only"], check=True)
        print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)
    size_mb = path.stat().st_size / 1e6
    catalogue = load_catalogue(REPO_ROOT / "data")
    hub_s, read_s, rows, observations, errors = hub_path(path, catalogue)
    hub_peak = _peak_mb()
    duck_s, groups = duckdb_baseline(path, catalogue)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"file: {path} ({rows:,} rows, {size_mb:,.0f} MB); {os.cpu_count()} CPUs, load average {load}")
    print(
        f"hub    read_events_csv + reduce_events: {hub_s:6.2f} s  {rows / hub_s / 1e6:5.2f} M rows/s  "
        f"({observations:,} observations, {errors} error rows)  peak RSS {hub_peak:,.0f} MB"
    )
    print(f"       of which read_events_csv {read_s:.2f} s, reduce_events {hub_s - read_s:.2f} s")
    print(
        f"duckdb read_csv + GROUP BY:             {duck_s:6.2f} s  {rows / duck_s / 1e6:5.2f} M rows/s  "
        f"({groups:,} groups)  process peak RSS {_peak_mb():,.0f} MB"
    )
    print(f"ratio hub/duckdb time: {hub_s / duck_s:.2f}x  (goal <= 3x; >= 1 M rows/s; peak < 4096 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
