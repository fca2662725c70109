"""The release benchmark's set-up and measured build on a tiny synthetic alliance (SQLite).

The bench (bench/release_build.py) must store exactly the synthetic observations as approved
data, build a real release from them, time every stage of that one build, and agree with
DuckDB; and its agreement check must catch a figure that differs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select

from bench.indicators import check
from bench.release_build import (
    BENCH_USERNAME,
    STAGES,
    Figures,
    _baseline_child,
    build_and_compare,
    prepare_synthetic,
    report,
)
from bench.release_synthetic import synthetic_alliance
from hub.catalogue import load_catalogue
from hub.db import build_engine, session_scope
from hub.models import Release, Submission
from hub.releases import read_release
from hub.settings import REPO_ROOT

Built = tuple[str, Figures, dict[str, pd.DataFrame]]
SHAPE = {"seed": 3, "years": 1, "organisations": 12, "countries": 5}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    folder = tmp_path_factory.mktemp("bench_release")
    url = f"sqlite:///{folder / 'hub.sqlite3'}"
    stored = prepare_synthetic(url, folder, **SHAPE)
    expected, _ = synthetic_alliance(
        SHAPE["seed"], SHAPE["years"], SHAPE["organisations"], SHAPE["countries"]
    )
    assert stored == len(expected)
    figures, frames = build_and_compare(url, BENCH_USERNAME, "tiny")
    return url, figures, frames


def test_setup_stores_the_synthetic_observations_as_approved(built: Built) -> None:
    url, figures, frames = built
    expected, _ = synthetic_alliance(
        SHAPE["seed"], SHAPE["years"], SHAPE["organisations"], SHAPE["countries"]
    )
    loaded = frames["observations"]
    assert figures.observations == len(expected) == len(loaded)
    key = [
        "organisation",
        "metric",
        "period",
        "country",
        "content_type",
        "category",
        "time_bucket",
        "service",
    ]
    as_text = loaded.astype(dict.fromkeys(key, "string"))  # the hub reads codes as categoricals
    mine = as_text.groupby(key)["value"].sum().sort_index()
    theirs = expected.groupby(key)["value"].sum().sort_index()
    pd.testing.assert_series_equal(mine, theirs)
    engine = build_engine(url)
    with session_scope(engine) as session:
        statuses = set(session.exec(select(Submission.status)))
    engine.dispose()
    assert statuses == {"approved"}


def test_the_build_makes_a_release_and_times_its_stages(built: Built) -> None:
    url, figures, _ = built
    engine = build_engine(url)
    with session_scope(engine) as session:
        releases = list(session.exec(select(Release)))
        tables = read_release(session, 1)
    engine.dispose()
    assert [(r.number, r.status) for r in releases] == [(1, "built")]
    assert set(tables) == {"indicators", "observations", "targets", "reconciliation", "coverage", "peers"}
    assert set(figures.tables) == {*tables, "revisions"}  # the revisions log is stored as a table too
    assert len(tables["indicators"]) == figures.tables["indicators"] > 0
    stages = figures.stages
    assert list(stages) == list(STAGES)
    assert all(stages[s] > 0 for s in ("load", "indicators", "disclosure", "storage"))
    assert stages["rest"] >= 0
    assert sum(stages.values()) == pytest.approx(figures.total)
    assert figures.hidden_cells > 0
    assert "ratio (build - suppression) / duckdb" in report(figures)


def test_duckdb_agrees_and_the_check_catches_a_difference(built: Built) -> None:
    _, figures, frames = built
    assert figures.disagreement == ""
    assert figures.agreed > 1000
    catalogue = load_catalogue(REPO_ROOT / "data")
    baseline = {name: frames[name].copy() for name in ("sum", "ratio", "events")}
    assert check(frames["indicators"], baseline, catalogue) == figures.agreed
    sums = baseline["sum"]
    row = sums.index[(sums["level"] == "alliance") & sums["period"].str.fullmatch(r"\d{4}-\d{2}")][0]
    sums.loc[row, "value"] += 1
    with pytest.raises(AssertionError, match="sum: values differ"):
        check(frames["indicators"], baseline, catalogue)


def test_duckdb_counts_a_figure_reported_twice_once_as_the_engine_does(built: Built) -> None:
    """Overlapping scopes: one organisation's figures reported again, changed, by a newer
    submission. The engine keeps the newest submission's figure; so must the baseline, or
    the two would disagree on every total above it."""
    from bench.indicators import duckdb_figures
    from hub.indicators import compute_indicators

    _, _, frames = built
    catalogue = load_catalogue(REPO_ROOT / "data")
    observations = frames["observations"]
    sums = {code for code, metric in catalogue.metrics.items() if metric.combination == "sum"}
    first = observations.loc[observations["metric"].isin(sums), "organisation"].iloc[0]
    again = observations[(observations["organisation"] == first) & observations["metric"].isin(sums)].copy()
    again["submission_id"] = int(observations["submission_id"].max()) + 1
    again["value"] = again["value"] + 7
    overlapping = pd.concat([observations, again], ignore_index=True)
    indicators = compute_indicators(overlapping, catalogue)
    baseline = duckdb_figures(overlapping, catalogue)
    assert check(indicators, baseline, catalogue) > 1000


def test_the_baseline_runs_again_in_a_fresh_process_and_the_goal_uses_it(
    built: Built, tmp_path: Path
) -> None:
    """The build is timed in a fresh process, so the goal's baseline is too; the in-process
    time (DuckDB right after the build) is still reported."""
    from dataclasses import replace

    _, figures, frames = built
    observations = tmp_path / "observations.parquet"
    frames["observations"].to_parquet(observations, index=False)
    fresh = _baseline_child(str(observations))
    assert fresh["duckdb_fresh"] > 0 and fresh["duckdb_fresh_cpu"] > 0
    measured = replace(figures, **fresh)
    suppressed = measured.total - measured.suppression
    assert measured.ratio == pytest.approx(suppressed / fresh["duckdb_fresh"])
    assert measured.ratio_after_build == pytest.approx(suppressed / figures.duckdb)
    assert figures.ratio == pytest.approx(suppressed / figures.duckdb)  # no fresh run: the in-process one
    text = report(measured)
    assert "duckdb, own fresh process" in text and "against DuckDB after the build" in text


def test_the_memory_benchmark_fills_memory_three_times_and_reports_against_the_warm_fill(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench import memory_touch

    touch = memory_touch.measure(gib=0.125, pause=0.0)
    assert touch.cold > 0 and touch.warm > 0 and touch.after_pause > 0
    assert touch.cold_ratio == pytest.approx(touch.cold / touch.warm)
    assert memory_touch.main(["--gib", "0.125", "--pause", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "baseline" in lines[1] and lines[0].endswith("x the warm fill")
