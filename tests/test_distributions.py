"""Takedown-time distributions submitted directly: ttd-v1 buckets or a coarser scheme of its edges.

Stored as given (coarse buckets stay coarse), every rule of a whole distribution reported with
its row, nothing stored and no value echoed when a rule breaks. Both backends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hubcli import HubCommands
from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.models import MetricDefinition, Observation, Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.settings import REPO_ROOT
from hub.validation import ObservationIn
from ingest.distributions import distribution_problems
from ingest.pipeline import ingest_bytes

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
SAMPLE = REPO_ROOT / "data" / "samples" / "distribution.csv"
ORG = "example-platform"
TODAY = datetime(2026, 1, 15, tzinfo=UTC)
HEADER = "reporter,period,metric,country,time_bucket,value,unit,flag\n"


def _rows(*buckets: tuple[str, str]) -> str:
    return HEADER + "".join(f"{ORG},2025-Q1,co_takedown_time,,{b},{v},hours,\n" for b, v in buckets)


@pytest.fixture
def org_session(session: Session) -> Iterator[Session]:
    add_organisation(session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company"))
    session.commit()
    yield session


def _stored(session: Session) -> tuple[int, int]:
    subs = session.exec(select(func.count()).select_from(Submission)).one()
    obs = session.exec(select(func.count()).select_from(Observation)).one()
    return int(subs), int(obs)


# --- the bucket codes ----------------------------------------------------------------------


def test_coarse_bucket_codes_are_read_from_the_scheme_edges(catalogue: Catalogue) -> None:
    scheme = catalogue.buckets
    assert scheme.bucket("1m-5m") == scheme.buckets[1]  # a ttd-v1 bucket is itself
    day = scheme.bucket("0-1d")
    assert day is not None and (day.lower_minutes, day.upper_minutes) == (0, 1440)
    week = scheme.bucket("1d-7d")
    assert week is not None and (week.lower_minutes, week.upper_minutes) == (1440, 10080)
    tail = scheme.bucket("7d+")
    assert tail is not None and (tail.lower_minutes, tail.upper_minutes) == (10080, None)
    everything = scheme.bucket("0+")
    assert everything is not None and everything.upper_minutes is None
    # 25 h and 24h are not ttd-v1 edge labels (24 hours is written 1d); reversed or empty ranges
    for bad in ("0-25h", "0-24h", "1d-1d", "7d-1d", "1d-", "-1d", "+", "9d+", "0-0", "total", ""):
        assert scheme.bucket(bad) is None, bad
        assert not scheme.accepts(bad)


def _obs(bucket: str | None, value: float | None, country: str | None = None) -> ObservationIn:
    dims = {} if bucket is None else {"time_bucket": bucket}
    if country:
        dims["country"] = country
    return ObservationIn("co_takedown_time", parse_period("2025-Q1"), value, dims)


def _rules(
    catalogue: Catalogue, buckets: list[tuple[str, float | None]], total: float | None = None
) -> set[str]:
    rows = [(line, _obs(code, value)) for line, (code, value) in enumerate(buckets, start=2)]
    totals = [] if total is None else [(99, _obs(None, total))]
    return {p.rule for p in distribution_problems(catalogue.buckets, rows, totals)}


def test_a_full_or_coarse_partition_is_clean(catalogue: Catalogue) -> None:
    fine = [(code, 1.0) for code in catalogue.buckets.codes]
    assert _rules(catalogue, fine, total=float(len(fine))) == set()
    assert _rules(catalogue, [("0-1d", 5), ("1d+", 2)], total=7) == set()
    assert _rules(catalogue, [("0+", 5)]) == set()  # not_actioned is optional
    mixed = [("0-1m", 1), ("1m-5m", 1), ("5m-1d", 3), ("1d+", 0), ("not_actioned", 4)]
    assert _rules(catalogue, mixed, total=9) == set()


@pytest.mark.parametrize(
    ("buckets", "total", "rule"),
    [
        ([("0-1h", 1), ("2h+", 1)], None, "distribution.gap"),
        ([("1h-1d", 1), ("1d+", 1)], None, "distribution.gap"),  # nothing starts at 0
        ([("0-1d", 1), ("1h+", 1)], None, "distribution.overlap"),
        ([("0-1d", 1), ("1d+", 1), ("7d+", 1)], None, "distribution.overlap"),
        ([("0-1d", 1), ("1d-7d", 1)], None, "distribution.open_end_missing"),
        ([("0-1d", 1.5), ("1d+", 1)], None, "distribution.not_whole"),
        ([("0-1d", None), ("1d+", 1)], None, "distribution.value_missing"),
        ([("0-1d", 3), ("1d+", 1), ("not_actioned", 1)], 4, "distribution.total_mismatch"),
        ([("not_actioned", 3)], None, "distribution.no_timed_bucket"),
    ],
)
def test_distribution_rules(
    catalogue: Catalogue, buckets: list[tuple[str, float | None]], total: float | None, rule: str
) -> None:
    assert rule in _rules(catalogue, buckets, total)


# --- through the pipeline, both backends ---------------------------------------------------


def test_sample_is_stored_as_given_without_finer_counts(org_session: Session, catalogue: Catalogue) -> None:
    result = ingest_bytes(
        org_session, catalogue, SAMPLE.read_bytes(), SAMPLE.name, ORG, dry_run=False, today=TODAY
    )
    org_session.commit()
    assert result.report.ok, result.report.to_text()
    assert result.created and result.observations == 8  # the total row is checked, not stored
    rows = org_session.exec(
        select(Observation.country, Observation.time_bucket, Observation.value)
        .join(MetricDefinition, col(MetricDefinition.id) == col(Observation.metric_id))
        .where(MetricDefinition.code == "co_takedown_time")
    ).all()
    assert sorted(rows) == sorted(
        [
            ("_T", "0-1h", 310.0),
            ("_T", "1h-1d", 420.0),
            ("_T", "1d-7d", 150.0),
            ("_T", "7d+", 12.0),
            ("_T", "not_actioned", 8.0),
            ("NA", "0-1d", 25.0),
            ("NA", "1d+", 3.0),
            ("NA", "not_actioned", 0.0),
        ]
    )
    for _, code, _ in rows:  # each stored code names its bounds on the scheme
        assert catalogue.buckets.accepts(code)


BAD = [
    ("gap", _rows(("0-1h", "4242"), ("2h+", "5")), "distribution.gap", "4242"),
    ("overlap", _rows(("0-1d", "4242"), ("1h+", "5")), "distribution.overlap", "4242"),
    ("open_end", _rows(("0-1d", "4242"), ("1d-7d", "5")), "distribution.open_end_missing", "4242"),
    ("not_whole", _rows(("0-1d", "31337.25"), ("1d+", "5")), "distribution.not_whole", "31337.25"),
    ("negative", _rows(("0-1d", "-4242"), ("1d+", "5")), "value.negative", "-4242"),
    ("missing", _rows(("0-1d", ""), ("1d+", "4242")), "distribution.value_missing", "4242"),
    ("total", _rows(("0-1d", "4242"), ("1d+", "5"), ("", "9999")), "distribution.total_mismatch", "9999"),
    ("total_only", _rows(("", "9999")), "dimension.time_bucket_required", "9999"),
    ("not_an_edge", _rows(("0-25h", "4242"), ("25h+", "5")), "dimension.unknown_value", "25h"),
    ("duplicate", _rows(("0-1d", "4242"), ("0-1d", "4242"), ("1d+", "1")), "row.duplicate", "4242"),
]


@pytest.mark.parametrize(("name", "text", "rule", "secret"), BAD, ids=[b[0] for b in BAD])
def test_bad_distribution_is_rejected_stores_nothing_and_echoes_nothing(
    org_session: Session, catalogue: Catalogue, name: str, text: str, rule: str, secret: str
) -> None:
    before = _stored(org_session)
    result = ingest_bytes(
        org_session, catalogue, text.encode(), f"{name}.csv", ORG, dry_run=False, today=TODAY
    )
    org_session.commit()
    assert not result.report.ok
    assert rule in {p.rule for p in result.report.errors}, result.report.to_text()
    problem = next(p for p in result.report.errors if p.rule == rule)
    assert problem.row >= 2  # named by its file line
    assert secret not in result.report.to_json() and secret not in result.report.to_text()
    assert _stored(org_session) == before


def test_cli_ingests_the_sample(cli_env: dict[str, str], tmp_path: Path) -> None:
    run = HubCommands(cli_env, "ingest")  # one real process: the first `hub ingest`

    assert run("org", "add", ORG, "--name", "Example Platform", "--type", "company").returncode == 0
    report = tmp_path / "report.json"
    result = run("ingest", str(SAMPLE), "--org", ORG, "--report-json", str(report))
    assert result.returncode == 0, result.stderr
    assert "stored submission" in result.stdout and "8 observation(s)" in result.stdout
    assert json.loads(report.read_text())["accepted"] is True
    bad = tmp_path / "gap.csv"
    bad.write_text(_rows(("0-1h", "4242"), ("2h+", "5")))
    rejected = run("ingest", str(bad), "--org", ORG)
    assert rejected.returncode == 1 and "distribution.gap" in rejected.stderr
    assert "4242" not in rejected.stderr + rejected.stdout
