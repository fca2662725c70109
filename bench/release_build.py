"""Benchmark: the protected release build against the same indicators in DuckDB, same run.

Issue 4 section 7: build a release from the demo data and from a synthetic alliance of
5 years x 200 organisations x 60 countries (:mod:`bench.release_synthetic`, ~1 M approved
observations); goal: the release build within 3x of DuckDB computing the same indicators,
plus the suppression step, and under 60 s in all for the large set.

Set-up (not timed), on a fresh database (SQLite file, or a new PostgreSQL database on
127.0.0.1:5432 with ``--postgresql``): migrations and reference data, then either the
synthetic alliance, or the demo (``--demo``: the real ``hub demo --no-serve``, which stores
and approves through the hub). The synthetic set-up is bench-only: it registers the
organisations through hub.organisations, creates a secretariat user through hub.auth, and
writes one submission per organisation and year already marked approved by that user, with
its observation rows put in by one bulk insert into the same tables (executemany on SQLite,
COPY on PostgreSQL) instead of a million rows through hub.store's validation.

Timed, in a child process (clean peak RSS, nothing of the set-up in memory):

- the hub's build, :func:`hub.publication.build_protected_release` and the commit, exactly
  as ``hub release build`` runs it, with its stages timed by wrapping the functions it calls
  (no second computation): load (approved observations and organisations), indicators
  (:func:`hub.indicators.compute_indicators`), disclosure control
  (:func:`hub.disclosure.protect` and ``public_view``), storage (from the first table written
  as Parquet to the end of the commit, less the revisions log computed in between) and the
  rest (targets, reconciliation, published observations, coverage, revisions log, checks);
- the baseline: :func:`bench.indicators.duckdb_figures` (sums, ratios of sums, distribution
  bucket merges at the four levels per native period) on the very rows the build loaded,
  their codes as the text the database stores (:func:`as_stored`): DuckDB cannot read the
  SQLite file here (its sqlite extension is downloaded on first use and the machine is
  offline), so it gets the rows for free; the second ratio printed charges it the hub's own
  read as well. The two must agree (:func:`bench.indicators.check`). DuckDB on the hub's
  coded rows (categoricals) is timed too, for information.
- the baseline is timed twice: in the build's process right after the build (where the
  agreement is checked), and in a fresh process of its own, like the build's. The goal's
  ratio uses the fresh one. On these virtual machines the first write to memory the guest has
  not used lately costs about 2.4 s per GB, and later writes 0.1 s (``docs/benchmarks.md``,
  "Cold memory"): right after the build DuckDB runs on memory the build has just warmed,
  while the build itself started cold. Both times are printed.

    python -m bench.release_build                 # 5 years x 200 organisations x 60 countries
    python -m bench.release_build --quick         # 2 years x 50 organisations x 20 countries
    python -m bench.release_build --demo          # the demo alliance (hub demo --no-serve)
    python -m bench.release_build --postgresql    # the same on PostgreSQL
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

import hub.publication
import hub.releases
from bench.databases import empty_database
from bench.indicators import check, duckdb_figures
from bench.release_synthetic import synthetic_alliance
from hub.auth import create_user
from hub.catalogue import load_catalogue
from hub.db import build_engine, session_scope
from hub.demo.secretariat import SECRETARIAT_USERNAME
from hub.models import Observation, ReleaseTable, Submission, User
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.publication import build_protected_release
from hub.services import prepare_database
from hub.settings import REPO_ROOT, Settings
from hub.store import ensure_periods, metric_ids
from hub.vocab import DIMENSIONS

DATA_DIR = REPO_ROOT / "data"
BENCH_USERNAME = "bench-secretariat"
GOAL_RATIO, GOAL_SECONDS = 3.0, 60.0
LARGE = (5, 200, 60)  # years, organisations, countries
BASELINE_PAUSE = 5.0  # seconds between the build's process and the baseline's
QUICK = (2, 50, 20)

_OBSERVATION_TABLE: Table = Observation.__table__  # type: ignore[attr-defined]
_COLUMNS = tuple(c.name for c in _OBSERVATION_TABLE.columns if c.name != "id")


# --- set-up (not timed) ------------------------------------------------------------------------


def database(backend: str, folder: Path) -> AbstractContextManager[str]:
    """A fresh empty database for this benchmark (bench.databases)."""
    return empty_database(backend, folder, name="bench-release")


def _bulk_insert(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Observation rows in the session's transaction: COPY on PostgreSQL, executemany on SQLite."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY observation ({', '.join(_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    statement = f"INSERT INTO observation ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    for start in range(0, len(rows), 20_000):
        connection.exec_driver_sql(statement, rows[start : start + 20_000])


def prepare_synthetic(
    url: str, var_dir: Path, *, seed: int = 1, years: int = 5, organisations: int = 200, countries: int = 60
) -> int:
    """Migrate ``url``, then store the synthetic alliance as approved submissions (bench-only
    bulk set-up, see the module docstring) and a secretariat user; returns the observations."""
    settings = Settings(env="test", database_url=url, var_dir=var_dir)
    engine = build_engine(url)
    catalogue = prepare_database(engine, settings)
    frame, orgs = synthetic_alliance(seed, years, organisations, countries)
    with session_scope(engine) as session:
        org_ids: dict[str, int] = {}
        for org in orgs.itertuples(index=False):
            data = OrganisationIn(
                code=str(org.organisation),
                name=f"Bench {org.organisation}",
                stakeholder_type=str(org.stakeholder_type),
                country=str(org.org_country) or None,
                consents_to_be_named=bool(org.consents_to_be_named),
                status=str(org.status),
            )
            created = add_organisation(session, data, actor="bench")
            assert created.id is not None
            org_ids[data.code] = created.id
        user = create_user(
            session,
            BENCH_USERNAME,
            "Bench secretariat",
            "secretariat",
            None,
            secrets.token_urlsafe(24),
            actor="bench",
        )
        now = datetime.now(UTC)
        firsts = frame.drop_duplicates("submission_id")
        sizes = frame["submission_id"].value_counts()
        submissions = {
            int(row.submission_id): Submission(
                organisation_id=org_ids[str(row.organisation)],
                channel=str(row.channel),
                scope=f"bench-{row.submission_id}",
                checksum=hashlib.sha256(f"bench-{row.submission_id}".encode()).hexdigest(),
                status="approved",
                row_count=int(sizes[row.submission_id]),
                received_at=now,
                reviewed_by_id=user.id,
                reviewed_at=now,
            )
            for row in firsts.itertuples(index=False)
        }
        session.add_all(submissions.values())
        session.flush()
        periods = ensure_periods(session, (parse_period(p) for p in frame["period"].unique()))
        metrics = metric_ids(session, catalogue)
        values = frame["value"].astype(object).where(frame["value"].notna(), None)
        columns: dict[str, list[Any]] = {
            "submission_id": frame["submission_id"].map({k: s.id for k, s in submissions.items()}).tolist(),
            "metric_id": frame["metric"].map(metrics).tolist(),
            "period_id": frame["period"].map(periods).tolist(),
            **{name: frame[name].astype(object).tolist() for name in DIMENSIONS},
            "value": values.tolist(),
            "is_provisional": frame["provisional"].astype(bool).tolist(),
            "is_estimated": [False] * len(frame),
            "is_revised": [False] * len(frame),
            "source_label": [None] * len(frame),
        }
        _bulk_insert(session, list(zip(*(columns[name] for name in _COLUMNS), strict=True)))
    engine.dispose()
    return len(frame)


def prepare_demo(url: str) -> int:
    """Load and approve the demo with the real ``hub demo --no-serve``; returns the observations."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = url
    command = [sys.executable, "-m", "hub", "demo", "--no-serve"]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=REPO_ROOT)
    engine = build_engine(url)
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT COUNT(*) FROM observation")).scalar_one())
    engine.dispose()
    return count


@contextmanager
def demo_or(database_url: str | None) -> Iterator[str]:
    """``database_url`` as given, or else the demo built in a temporary SQLite database
    (``hub demo --no-serve``, about a minute), removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'demo.sqlite3'}"
        if not database_url:
            print("building the demo (hub demo --no-serve) ...", flush=True)
            prepare_demo(url)
        yield url


# --- the measured build --------------------------------------------------------------------------


STAGES = ("load", "indicators", "disclosure", "rest", "storage")


@dataclass
class _Stages:
    """Seconds spent in the wrapped functions during one build, and what they returned."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*STAGES[:3], "revisions"), 0.0))
    first_storage: float | None = None
    observations: pd.DataFrame | None = None
    indicators: pd.DataFrame | None = None
    hidden: int = 0


# (module, function, stage): the functions hub.publication and hub.releases call during a build
_WRAPPED: tuple[tuple[Any, str, str], ...] = (
    (hub.publication, "load_observations", "load"),
    (hub.publication, "load_organisations", "load"),
    (hub.publication, "compute_indicators", "indicators"),
    (hub.publication, "protect", "disclosure"),
    (hub.publication, "public_view", "disclosure"),
    (hub.releases, "to_parquet", "storage"),
    (
        hub.releases,
        "revisions",
        "revisions",
    ),  # inside storage's span (it needs the checksums): counted as rest
)


@contextmanager
def _instrumented() -> Iterator[_Stages]:
    """Time the build's stages by wrapping the very functions it calls (restored afterwards)."""
    stages = _Stages()

    def wrap(original: Callable[..., Any], name: str, stage: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = original(*args, **kwargs)
            if stage == "storage":  # everything from the first table written to the commit
                stages.first_storage = stages.first_storage or started
                return result
            stages.seconds[stage] += time.perf_counter() - started
            if name == "load_observations":
                stages.observations = result
            elif name == "compute_indicators":
                stages.indicators = result
            elif name == "protect":
                stages.hidden = int(result["suppressed"].sum())
            return result

        return timed

    originals = [(module, name, getattr(module, name)) for module, name, _ in _WRAPPED]
    try:
        for (module, name, stage), (_, _, original) in zip(_WRAPPED, originals, strict=True):
            setattr(module, name, wrap(original, name, stage))
        yield stages
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


@dataclass
class Figures:
    """One build and its baseline, in seconds (wall clock unless said)."""

    backend: str
    data: str
    observations: int
    indicator_cells: int
    hidden_cells: int
    tables: dict[str, int]
    stages: dict[str, float]
    total: float
    total_cpu: float
    duckdb: float
    duckdb_cpu: float
    duckdb_figures: int
    agreed: int
    disagreement: str = ""  # why DuckDB and the hub differ ("" when they agree)
    peak_mb: float = 0.0
    duckdb_fresh: float = 0.0  # the baseline in a fresh process of its own, as the build (0: not run)
    duckdb_fresh_cpu: float = 0.0
    cpu_model: str = ""
    duckdb_coded: float = 0.0  # DuckDB on the hub's coded frame (categoricals), after the build: information

    @property
    def baseline(self) -> float:
        """DuckDB's time under the build's own conditions: a fresh process when measured."""
        return self.duckdb_fresh or self.duckdb

    @property
    def suppression(self) -> float:
        return self.stages["disclosure"]

    @property
    def ratio(self) -> float:
        """(release build minus suppression) / DuckDB on the loaded frame (:attr:`baseline`)."""
        return (self.total - self.suppression) / self.baseline

    @property
    def ratio_with_read(self) -> float:
        """The same, DuckDB charged the hub's read of the approved rows as well."""
        return (self.total - self.suppression) / (self.baseline + self.stages["load"])

    @property
    def ratio_after_build(self) -> float:
        """The same against DuckDB run in the build's process right after it (warm memory)."""
        return (self.total - self.suppression) / self.duckdb

    def meets_goals(self) -> bool:
        return self.ratio <= GOAL_RATIO and self.total < GOAL_SECONDS


def build_and_compare(url: str, username: str, data: str) -> tuple[Figures, dict[str, pd.DataFrame]]:
    """Build the next release of ``url`` as ``username`` (timed by stage), then DuckDB's
    figures on the observations the build loaded; raises if the two disagree. Returns the
    figures and the frames compared (observations, indicators, DuckDB's tables)."""
    catalogue = load_catalogue(DATA_DIR)
    engine = build_engine(url)
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.username == username)).one()
    with _instrumented() as stages:
        started, cpu = time.perf_counter(), time.process_time()
        with session_scope(engine) as session:
            release = build_protected_release(
                session, catalogue=catalogue, data_dir=DATA_DIR, title="benchmark", built_by=user
            )
        total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
        ended = started + total
    assert stages.observations is not None and stages.indicators is not None
    with session_scope(engine) as session:
        tables = dict(
            session.exec(
                select(ReleaseTable.name, ReleaseTable.row_count).where(ReleaseTable.release_id == release.id)
            ).all()
        )
    engine.dispose()
    seconds = dict(stages.seconds)
    seconds["storage"] = ended - (stages.first_storage or ended) - seconds.pop("revisions")
    seconds["rest"] = total - sum(seconds.values())
    rows = as_stored(stages.observations)  # not timed, as DuckDB is not charged the read
    started, cpu = time.perf_counter(), time.process_time()
    baseline = duckdb_figures(rows, catalogue)
    duck, duck_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    duckdb_figures(stages.observations, catalogue)
    duck_coded = time.perf_counter() - started
    try:
        agreed, disagreement = check(stages.indicators, baseline, catalogue), ""
    except AssertionError as exc:  # reported with the figures, not instead of them
        agreed, disagreement = 0, str(exc)
    figures = Figures(
        backend=make_url(url).get_backend_name(),
        data=data,
        observations=len(stages.observations),
        indicator_cells=len(stages.indicators),
        hidden_cells=stages.hidden,
        tables=tables,
        stages={s: seconds[s] for s in STAGES},
        total=total,
        total_cpu=total_cpu,
        duckdb=duck,
        duckdb_cpu=duck_cpu,
        duckdb_figures=sum(len(b) for b in baseline.values()),
        agreed=agreed,
        disagreement=disagreement,
        duckdb_coded=duck_coded,
    )
    return figures, {"observations": rows, "indicators": stages.indicators, **baseline}


def as_stored(observations: pd.DataFrame) -> pd.DataFrame:
    """The loaded observations with their codes as the text the database stores.

    DuckDB's baseline computes from these rows, as in every session before the hub's reader
    gave its code columns as categoricals (session 13): DuckDB reading the observation table
    itself would get text. The categoricals are the hub's own encoding, paid for in its load
    stage; handed to DuckDB (which scans them as ENUMs, about 3x faster on the demo) they
    would give the baseline that work for free. That time is printed too, for information."""
    coded = [name for name, kind in observations.dtypes.items() if isinstance(kind, pd.CategoricalDtype)]
    return observations.astype(dict.fromkeys(coded, "string"))


def _child(url: str, username: str, data: str, observations: str) -> dict[str, Any]:
    """The build and the in-process baseline; leaves the loaded observations in
    ``observations`` (Parquet, after the timing) for :func:`_baseline_child`."""
    figures, frames = build_and_compare(url, username, data)
    figures.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    frames["observations"].to_parquet(observations, index=False)
    return asdict(figures)


def _baseline_child(observations: str) -> dict[str, float]:
    """DuckDB on the build's observations in a fresh process, as the build ran in one."""
    frame = pd.read_parquet(observations)
    catalogue = load_catalogue(DATA_DIR)
    started, cpu = time.perf_counter(), time.process_time()
    duckdb_figures(frame, catalogue)
    return {"duckdb_fresh": time.perf_counter() - started, "duckdb_fresh_cpu": time.process_time() - cpu}


def cpu_model() -> str:
    """The processor the figures were measured on (/proc/cpuinfo), for comparing sessions."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def measure(backend: str, *, demo: bool, shape: tuple[int, int, int], seed: int = 1) -> Figures:
    """Set up a fresh database, then build and compare in a child process."""
    years, organisations, countries = shape
    with (
        tempfile.TemporaryDirectory(prefix="hub_bench_release_") as folder,
        database(backend, Path(folder)) as url,
    ):
        started = time.perf_counter()
        if demo:
            count, username, data = prepare_demo(url), SECRETARIAT_USERNAME, "demo"
        else:
            count = prepare_synthetic(
                url, Path(folder), seed=seed, years=years, organisations=organisations, countries=countries
            )
            username, data = (
                BENCH_USERNAME,
                f"synthetic {years} years x {organisations} organisations x {countries} countries",
            )
        print(
            f"set-up: {count:,} observations stored and approved in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        observations = str(Path(folder) / "observations.parquet")
        command = [sys.executable, "-m", "bench.release_build", "--child", url, username, data, observations]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        figures = Figures(**json.loads(done.stdout.strip().splitlines()[-1]))
        time.sleep(BASELINE_PAUSE)  # the build's freed memory goes cold again, as before the build
        command = [sys.executable, "-m", "bench.release_build", "--baseline-child", observations]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    return replace(figures, **fresh, cpu_model=cpu_model())


def report(figures: Figures) -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    tables = ", ".join(f"{name} {rows:,}" for name, rows in figures.tables.items())
    lines = [
        f"{figures.data} on {figures.backend}: {figures.observations:,} approved observations; "
        f"{os.cpu_count()} CPUs ({figures.cpu_model or cpu_model()}), load average {load}",
        f"release tables (rows): {tables}; {figures.indicator_cells:,} indicator cells, "
        f"{figures.hidden_cells:,} hidden by disclosure control",
    ]
    lines += [f"  {stage:<28} {figures.stages[stage]:7.2f} s" for stage in STAGES]
    verdict = "meets" if figures.meets_goals() else "MISSES"
    agreement = (
        f"{figures.agreed:,} compared and equal"
        if not figures.disagreement
        else "DISAGREE: " + figures.disagreement.replace("\n", " | ")[:600]
    )
    lines += [
        f"  {'release build (with commit)':<28} {figures.total:7.2f} s wall {figures.total_cpu:7.2f} s CPU"
        f"  peak RSS {figures.peak_mb:,.0f} MB",
        f"  {'duckdb, after the build':<28} {figures.duckdb:7.2f} s wall {figures.duckdb_cpu:7.2f} s CPU"
        f"  {figures.duckdb_figures:,} figures; {agreement}",
    ]
    if figures.duckdb_coded:
        lines.append(
            f"  {'duckdb, on the coded rows':<28} {figures.duckdb_coded:7.2f} s wall"
            "  (information: the hub's categoricals, not the stored text; see as_stored)"
        )
    if figures.duckdb_fresh:
        lines.append(
            f"  {'duckdb, own fresh process':<28} {figures.duckdb_fresh:7.2f} s wall "
            f"{figures.duckdb_fresh_cpu:7.2f} s CPU  (the baseline: the build ran in a fresh process too)"
        )
    lines += [
        f"ratio (build - suppression) / duckdb: {figures.ratio:.2f}x "
        f"({figures.ratio_with_read:.2f}x with the read charged to DuckDB too; "
        f"{figures.ratio_after_build:.2f}x against DuckDB after the build); "
        f"suppression {figures.suppression:.2f} s; total {figures.total:.2f} s",
        f"{verdict} the goals (ratio <= {GOAL_RATIO:.0f}x: {'yes' if figures.ratio <= GOAL_RATIO else 'no'}; "
        f"total < {GOAL_SECONDS:.0f} s: {'yes' if figures.total < GOAL_SECONDS else 'no'})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 years x 50 organisations x 20 countries")
    parser.add_argument("--demo", action="store_true", help="the demo alliance instead of the synthetic one")
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL on 127.0.0.1 instead of SQLite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--child", nargs=4, metavar=("URL", "USERNAME", "DATA", "OBSERVATIONS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--baseline-child", metavar="OBSERVATIONS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # the build's own stage log (hub.publication, INFO) goes to stderr as it runs
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="  %(name)s: %(message)s")
        logging.getLogger("hub.publication").setLevel(logging.INFO)
        print(json.dumps(_child(*args.child)))
        return 0
    if args.baseline_child:
        print(json.dumps(_baseline_child(args.baseline_child)))
        return 0
    figures = measure(
        "postgresql" if args.postgresql else "sqlite",
        demo=args.demo,
        shape=QUICK if args.quick else LARGE,
        seed=args.seed,
    )
    print(report(figures))
    print(json.dumps(asdict(figures)))
    return 1 if figures.disagreement else 0


if __name__ == "__main__":
    raise SystemExit(main())
