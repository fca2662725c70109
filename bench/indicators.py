"""Benchmark: the indicator engine against the same figures in DuckDB SQL, on the same frame.

Issue 4 section 7: the release build on 5 years x 200 organisations x 60 countries must stay
within 3x of a DuckDB baseline (plus disclosure control) and under 60 s. This measures the
engine's share: :func:`hub.indicators.compute_indicators` on the synthetic alliance of
:mod:`bench.release_synthetic`, then DuckDB on the very same pandas frame computing sums,
ratios of sums (numerator and denominator joined per organisation) and distribution bucket
merges on the common edges of the schemes present, at the four levels, per native period.
The two must agree: every DuckDB figure of a month at every level, and of every native period
at organisation level, is looked up in the engine's table (months are never rolled up to,
and an organisation's native figure always wins over a roll-up, so those figures are
identical by definition; quarters and years at aggregated levels differ on purpose, because
the engine also counts organisations whose quarter or year it rolled up from months).

The engine does more than the baseline (roll-ups, shares within N hours, percentiles,
dominance, year-on-year change, reporters, strings for every cell), so the ratio is an upper
bound on its overhead.

    python -m bench.indicators                 # 5 years x 200 organisations x 60 countries
    python -m bench.indicators --organisations 50 --years 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench.release_synthetic import synthetic_alliance
from hub.catalogue import NOT_ACTIONED, Catalogue, load_catalogue
from hub.figures import ALLIANCE, OBSERVATION_TYPES
from hub.indicators import compute_indicators
from hub.settings import REPO_ROOT
from hub.vocab import DIMENSIONS

KEY_DIMS = [d for d in DIMENSIONS if d != "time_bucket"]
GOAL_SECONDS = 15.0  # the engine's share of the 60 s release build


def observations(seed: int, years: int, organisations: int, countries: int) -> pd.DataFrame:
    """The synthetic observations, cached in /tmp (generation is not what is measured)."""
    path = Path("/tmp") / f"csea_release_synthetic_{seed}_{years}_{organisations}_{countries}.parquet"
    if path.exists():
        return pd.read_parquet(path).astype(OBSERVATION_TYPES)
    frame, _ = synthetic_alliance(seed, years, organisations, countries)
    frame.to_parquet(path)
    return frame


def _levels(source: str) -> str:
    return f"""
        SELECT 'organisation' AS level, organisation AS entity, * FROM {source}
        UNION ALL SELECT 'stakeholder_type', stakeholder_type, * FROM {source}
        UNION ALL SELECT 'country', org_country, * FROM {source} WHERE org_country <> ''
        UNION ALL SELECT 'alliance', '{ALLIANCE}', * FROM {source}"""


def duckdb_figures(frame: pd.DataFrame, catalogue: Catalogue) -> dict[str, pd.DataFrame]:
    """Sums, ratios of sums and merged distribution buckets per level and native period.

    As in the engine, the same figure in two submissions (overlapping scopes) counts once:
    the newest submission's (for a distribution, its whole distribution)."""
    con = duckdb.connect()
    con.register("reported", frame)
    metrics = catalogue.metrics.values()
    sums = ", ".join(f"'{m.code}'" for m in metrics if m.combination == "sum")
    dists = ", ".join(f"'{m.code}'" for m in metrics if m.combination == "distribution")
    ratios = [m for m in metrics if m.combination == "ratio_of_sums"]
    dims = ", ".join(KEY_DIMS)
    con.sql(f"""
        CREATE TEMP VIEW obs AS SELECT * FROM reported
        QUALIFY submission_id = MAX(submission_id) OVER (PARTITION BY metric, period, organisation, {dims})""")
    out: dict[str, pd.DataFrame] = {}
    out["sum"] = con.sql(f"""
        WITH o AS (SELECT * FROM obs WHERE metric IN ({sums})), lv AS ({_levels("o")})
        SELECT metric, period, level, entity, {dims}, SUM(value) AS value, COUNT(value) AS coverage
        FROM lv GROUP BY ALL""").df()
    parts = " UNION ALL ".join(
        f"""SELECT '{m.code}' AS metric, n.period, n.organisation, n.stakeholder_type, n.org_country,
               {", ".join(f"n.{d}" for d in KEY_DIMS)}, n.value AS num, d.value AS den
            FROM obs n JOIN obs d USING (period, organisation, {dims})
            WHERE n.metric = '{m.numerator}' AND d.metric = '{m.denominator}'
              AND n.value IS NOT NULL AND d.value IS NOT NULL
              AND {" AND ".join(f"n.{d} = '_T'" for d in KEY_DIMS if d not in m.dimensions) or "TRUE"}"""
        for m in ratios
    )
    out["ratio"] = con.sql(f"""
        WITH o AS ({parts}), lv AS ({_levels("o")})
        SELECT metric, period, level, entity, {dims}, SUM(num) AS numerator, SUM(den) AS denominator,
               SUM(num) / NULLIF(SUM(den), 0) AS value, COUNT(*) AS coverage
        FROM lv GROUP BY ALL""").df()
    edges = [0, *catalogue.buckets.edges_minutes]
    buckets = pd.DataFrame(
        [
            (code, edges.index(b.lower_minutes) if b.lower_minutes is not None else -1)
            for code in set(frame.loc[frame["metric"].isin([m.code for m in metrics if m.combination == "distribution"]), "time_bucket"])
            for b in [catalogue.buckets.bucket(code) or catalogue.buckets.buckets[-1]]
        ],
        columns=["time_bucket", "lo"],
    )  # fmt: skip
    con.register("buckets", buckets)
    out["events"] = con.sql(f"""
        WITH o AS (SELECT obs.*, b.lo FROM obs JOIN buckets b USING (time_bucket) WHERE metric IN ({dists})),
        lv AS ({_levels("o")}),
        units AS (  -- one organisation's distribution: the bit set of its lower edges
            SELECT metric, period, level, entity, {dims}, organisation,
                   SUM(CASE WHEN lo >= 0 THEN (1::BIGINT << lo) ELSE 0 END) AS mask
            FROM lv GROUP BY ALL),
        common AS (
            SELECT metric, period, level, entity, {dims}, BIT_AND(mask) | 1 AS edges, COUNT(*) AS coverage
            FROM units GROUP BY ALL)
        SELECT metric, period, level, entity, {dims},
               CASE WHEN lo < 0 THEN -1
                    ELSE CAST(FLOOR(LOG2(edges & ((2::BIGINT << lo) - 1))) AS INTEGER) END AS lo,
               SUM(value) AS value, ANY_VALUE(coverage) AS coverage
        FROM lv JOIN common USING (metric, period, level, entity, {dims})
        GROUP BY ALL""").df()
    con.close()
    return out


def check(engine: pd.DataFrame, baseline: dict[str, pd.DataFrame], catalogue: Catalogue) -> int:
    """Every comparable DuckDB figure equals the engine's; returns how many were compared."""
    native = engine[engine["statistic"].isin(["value", "events"])]
    key = ["metric", "period", "level", "entity", *KEY_DIMS]
    edges = [0, *catalogue.buckets.edges_minutes]

    def lower_index(code: str) -> int:
        if code == NOT_ACTIONED:
            return -1
        bucket = catalogue.buckets.bucket(code)
        return edges.index(bucket.lower_minutes) if bucket and bucket.lower_minutes is not None else -9

    compared = 0
    for name, theirs in baseline.items():
        theirs = theirs[(theirs["level"] == "organisation") | theirs["period"].str.fullmatch(r"\d{4}-\d{2}")]
        if name == "events":
            mine = native[(native["statistic"] == "events") & (native["time_bucket"] != "_T")]
            codes = pd.Series(mine["time_bucket"].unique())
            lows = {str(c): lower_index(str(c)) for c in codes}
            mine = mine.assign(lo=mine["time_bucket"].map(lows).astype(int))
            join = [*key, "lo"]
        else:
            mine = native[native["statistic"] == "value"]
            join = key
        theirs = theirs.astype({c: "string" for c in key})
        merged = theirs.merge(mine[[*join, "value", "coverage"]], on=join, how="left", suffixes=("_duck", ""))
        missing = merged["value"].isna() & merged["value_duck"].notna()
        if missing.any():
            raise AssertionError(
                f"{name}: {int(missing.sum())} DuckDB figures have no engine figure, e.g.\n{merged[missing].head()}"
            )
        both = merged["value_duck"].notna()
        if not np.allclose(merged.loc[both, "value"], merged.loc[both, "value_duck"], rtol=1e-9, atol=1e-9):
            bad = merged[both & ~np.isclose(merged["value"], merged["value_duck"], rtol=1e-9, atol=1e-9)]
            raise AssertionError(f"{name}: values differ, e.g.\n{bad.head()}")
        if not (merged["coverage"].to_numpy() == merged["coverage_duck"].to_numpy()).all():
            raise AssertionError(f"{name}: coverage differs")
        compared += len(merged)
    return compared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--organisations", type=int, default=200)
    parser.add_argument("--countries", type=int, default=60)
    args = parser.parse_args(argv)
    catalogue = load_catalogue(REPO_ROOT / "data")
    started = time.perf_counter()
    frame = observations(args.seed, args.years, args.organisations, args.countries)
    print(
        f"synthetic alliance: {len(frame):,} observations, {frame['organisation'].nunique()} reporting "
        f"organisations, {args.years} years, {frame.loc[frame['org_country'] != '', 'org_country'].nunique()} countries "
        f"({time.perf_counter() - started:.1f} s to generate or read)",
        flush=True,
    )
    started, cpu = time.perf_counter(), time.process_time()
    table = compute_indicators(frame, catalogue)
    engine_seconds, engine_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    baseline = duckdb_figures(frame, catalogue)
    duck_seconds, duck_cpu = time.perf_counter() - started, time.process_time() - cpu
    compared = check(table, baseline, catalogue)
    ratio = engine_seconds / duck_seconds
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall and CPU seconds)")
    print(
        f"hub.indicators.compute_indicators: {engine_seconds:6.2f} s wall {engine_cpu:6.2f} s CPU  {len(table):,} figures"
    )
    print(f"duckdb sums, ratios, bucket merges: {duck_seconds:6.2f} s wall {duck_cpu:6.2f} s CPU  "
          f"{sum(len(b) for b in baseline.values()):,} figures")  # fmt: skip
    verdict = "met" if engine_seconds <= GOAL_SECONDS else "not met in wall time"
    if engine_seconds > GOAL_SECONDS and engine_cpu <= GOAL_SECONDS:
        verdict += f" (met in CPU time: the machine is shared, load {os.getloadavg()[0]:.1f})"
    print(f"agree on {compared:,} figures; ratio engine/duckdb {ratio:.2f}x wall, "
          f"{engine_cpu / duck_cpu:.2f}x CPU; goal engine <= {GOAL_SECONDS:.0f} s: {verdict}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
