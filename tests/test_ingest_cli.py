"""``hub ingest``: real processes and direct calls, both backends; a bad file stores nothing.

Every rejected file must name the expected rule and must never echo the submitted value in
stdout, stderr or the JSON report (issue 3, section 4).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hubcli import hub_in_process, hub_process
from sqlalchemy import func
from sqlalchemy import text as sql_text
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.db import build_engine
from hub.models import AuditEvent, MetricDefinition, Observation, Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.settings import REPO_ROOT
from ingest.formats import aggregate_json_schema
from ingest.pipeline import ingest_file
from ingest.report import ValidationReport

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "ingest"
SAMPLES = REPO_ROOT / "data" / "samples"
ORG = "example-platform"
TODAY = datetime(2026, 1, 15, tzinfo=UTC)

# file, expected rule, the submitted value that must never be echoed
BAD_FILES = [
    ("email.csv", "pd.email", "jane.doe@example.org"),
    ("ip_address.csv", "pd.ipv4", "192.168.10.20"),
    ("url.csv", "pd.url_scheme", "bad.example"),
    ("hex_case_ref.csv", "pd.hex_id", "d41d8cd98f00b204e9800998ecf8427e"),
    ("unknown_column.csv", "format.unknown_column", "secretnote"),
    ("other_reporter.csv", "reporter.mismatch", "ncmec"),
    ("nan.csv", "value.not_finite", "NaN"),
    ("nan.json", "value.not_finite", "NaN"),
    ("overflow.csv", "value.not_finite", "1e309"),
    ("negative_count.csv", "value.negative", "-517"),
    ("fractional_count.csv", "value.not_whole", "12.375"),
    ("wrong_unit.csv", "unit.mismatch", "hours"),
    ("wrong_period_kind.csv", "period.kind_mismatch", "2025-03"),
    ("future_period.csv", "period.future", "2099"),
    ("actioned_before_received.csv", "events.actioned_before_received", "08:01"),
    ("nul_byte.csv", "cell.nul_byte", "1\x002"),
    ("duplicate_key.csv", "row.duplicate", "11,"),
]


# `hub ingest` runs in-process (tests/hubcli.py) but for the first call of the CLI tests that
# prove the real process: an accepted file, a rejected one and a usage error, on both backends
run = hub_in_process


def counts(database_url: str) -> tuple[int, int]:
    """(submissions, observations) in the database, to prove a rejected file stored nothing."""
    engine = build_engine(database_url)
    try:
        with Session(engine) as session:
            subs = session.exec(select(func.count()).select_from(Submission)).one()
            obs = session.exec(select(func.count()).select_from(Observation)).one()
            return int(subs), int(obs)
    finally:
        engine.dispose()


def attempts(database_url: str) -> list[AuditEvent]:
    """The ``submission.attempt`` audit events, oldest first."""
    engine = build_engine(database_url)
    try:
        with Session(engine) as session:
            query = select(AuditEvent).where(AuditEvent.action == "submission.attempt")
            return list(session.exec(query.order_by(col(AuditEvent.id))))
    finally:
        engine.dispose()


def audit_table_text(database_url: str) -> str:
    """Every column of every audit_event row as text, to prove a value never reached it."""
    engine = build_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sql_text("SELECT * FROM audit_event")).all()
            return "\n".join(" | ".join(str(cell) for cell in row) for row in rows)
    finally:
        engine.dispose()


def metric_rows(session: Session, metric: str) -> list[Observation]:
    query = (
        select(Observation)
        .join(MetricDefinition, col(MetricDefinition.id) == col(Observation.metric_id))
        .where(MetricDefinition.code == metric)
    )
    return list(session.exec(query))


@pytest.fixture
def org_env(cli_env: dict[str, str]) -> dict[str, str]:
    """The CLI environment with the submitting company registered."""
    added = run(cli_env, "org", "add", ORG, "--name", "Example Platform", "--type", "company")
    assert added.returncode == 0, added.stderr
    return cli_env


@pytest.fixture
def org_session(session: Session) -> Iterator[Session]:
    """A loaded session with the submitting company registered."""
    add_organisation(session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company"))
    session.commit()
    yield session


# --- through the real process -------------------------------------------------------------


def test_cli_accepts_csv_and_json_and_ignores_the_same_file_again(org_env: dict[str, str]) -> None:
    url = org_env["HUB_DATABASE_URL"]
    first = hub_process(org_env, "ingest", str(SAMPLES / "aggregate.csv"), "--org", ORG)
    assert first.returncode == 0, first.stderr
    assert "stored submission" in first.stdout
    subs, obs = counts(url)
    assert (subs, obs) == (1, 5)
    again = run(org_env, "ingest", str(SAMPLES / "aggregate.csv"), "--org", ORG)
    assert again.returncode == 0, again.stderr
    assert "already stored" in again.stdout
    assert counts(url) == (subs, obs)
    as_json = run(org_env, "ingest", str(SAMPLES / "aggregate.json"), "--org", ORG)
    assert as_json.returncode == 0, as_json.stderr
    assert counts(url) == (subs + 1, obs + 3)


def test_cli_dry_run_stores_nothing_and_prints_the_report(org_env: dict[str, str], tmp_path: Path) -> None:
    before = counts(org_env["HUB_DATABASE_URL"])
    report = tmp_path / "report.json"
    result = run(
        org_env,
        "ingest",
        str(SAMPLES / "aggregate.csv"),
        "--org",
        ORG,
        "--dry-run",
        "--report-json",
        str(report),
    )
    assert result.returncode == 0, result.stderr
    assert "accepted" in result.stdout and "nothing stored" in result.stdout
    assert json.loads(report.read_text())["accepted"] is True
    assert counts(org_env["HUB_DATABASE_URL"]) == before


def test_cli_reduces_and_stores_an_event_file(org_env: dict[str, str]) -> None:
    result = run(org_env, "ingest", str(SAMPLES / "events.csv"), "--org", ORG)
    assert result.returncode == 0, result.stderr
    engine = build_engine(org_env["HUB_DATABASE_URL"])
    try:
        with Session(engine) as session:
            histogram = metric_rows(session, "co_takedown_time")
            totals = [
                o for o in histogram if o.country == "_T" and o.notice_source == "_T" and o.category == "_T"
            ]
            totals = [o for o in totals if o.content_type == "_T"]
            # the case closed as not_illegal never reaches the clock's stop: out of the histogram
            assert sum(o.value or 0 for o in totals) == 4
            assert {o.time_bucket: o.value for o in totals}["not_actioned"] == 1
            assert len(metric_rows(session, "co_notices_received")) > 0
    finally:
        engine.dispose()


def test_cli_missing_file_is_a_usage_error(org_env: dict[str, str]) -> None:
    assert hub_process(org_env, "ingest", "/nonexistent/file.csv", "--org", ORG).returncode == 2
    assert run(org_env, "ingest", str(SAMPLES / "aggregate.csv")).returncode == 2  # no --org


@pytest.mark.parametrize(("name", "rule", "secret"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_cli_rejects_bad_file_without_echoing_it(
    org_env: dict[str, str], tmp_path: Path, name: str, rule: str, secret: str
) -> None:
    url = org_env["HUB_DATABASE_URL"]
    before = counts(url)
    report = tmp_path / "report.json"
    ingest = hub_process if name == "email.csv" else hub_in_process
    result = ingest(org_env, "ingest", str(FIXTURES / name), "--org", ORG, "--report-json", str(report))
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads(report.read_text())
    assert document["accepted"] is False
    assert rule in {p["rule"] for p in document["problems"]}
    assert rule in result.stderr
    for text in (result.stdout, result.stderr, report.read_text()):
        assert secret not in text
    assert counts(url) == before


# --- direct calls ---------------------------------------------------------------------------


def test_direct_ingest_stores_counts_and_namibia(org_session: Session, catalogue: Catalogue) -> None:
    result = ingest_file(org_session, catalogue, SAMPLES / "aggregate.csv", ORG, dry_run=False, today=TODAY)
    org_session.commit()
    assert result.report.ok and result.created and result.observations == 5
    rows = metric_rows(org_session, "co_notices_received")
    assert sorted((o.country, o.value) for o in rows if o.category == "_T" and o.notice_source == "_T") == [
        ("NA", 40.0),
        ("_T", 1250.0),
    ]
    again = ingest_file(org_session, catalogue, SAMPLES / "aggregate.csv", ORG, dry_run=False, today=TODAY)
    assert not again.created and again.submission_id == result.submission_id


def test_direct_dry_run_and_rejections_store_nothing(org_session: Session, catalogue: Catalogue) -> None:
    def stored() -> int:
        return int(org_session.exec(select(func.count()).select_from(Submission)).one())

    before = stored()
    dry = ingest_file(org_session, catalogue, SAMPLES / "aggregate.json", ORG, dry_run=True, today=TODAY)
    assert dry.report.ok and dry.submission_id is None and dry.observations == 3
    for name, rule, secret in BAD_FILES:
        result = ingest_file(org_session, catalogue, FIXTURES / name, ORG, dry_run=False, today=TODAY)
        assert rule in {p.rule for p in result.report.problems}, name
        assert secret not in result.report.to_json() and secret not in result.report.to_text(), name
        assert result.submission_id is None
    org_session.commit()
    assert stored() == before


def test_direct_bom_and_namibia_files_are_accepted(
    org_session: Session, catalogue: Catalogue, tmp_path: Path
) -> None:
    bom = ingest_file(org_session, catalogue, FIXTURES / "bom.csv", ORG, dry_run=False, today=TODAY)
    assert bom.report.ok and bom.created
    shutil.copyfile(FIXTURES / "namibia.csv", tmp_path / "namibia.csv")
    namibia = ingest_file(org_session, catalogue, tmp_path / "namibia.csv", ORG, dry_run=True, today=TODAY)
    assert namibia.report.ok, namibia.report.to_text()


def test_events_report_rows_as_file_lines(org_session: Session, catalogue: Catalogue, tmp_path: Path) -> None:
    lines = (SAMPLES / "events.csv").read_text().splitlines()
    lines[3] = lines[3].replace("2025-03-04T00:20:00Z", "2025-03-03T00:20:00Z")  # before received_at
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    result = ingest_file(org_session, catalogue, path, ORG, dry_run=False, today=TODAY)
    [problem] = result.report.errors
    assert (problem.row, problem.rule) == (4, "events.actioned_before_received")


def test_json_schema_is_published_from_the_model() -> None:
    schema = aggregate_json_schema()
    assert schema["additionalProperties"] is False
    assert {"schema_version", "reporter", "observations"} <= set(schema["required"])


def test_a_different_file_for_the_same_period_is_not_stored_without_a_reason(
    org_session: Session, catalogue: Catalogue, tmp_path: Path
) -> None:
    first = ingest_file(org_session, catalogue, FIXTURES / "bom.csv", ORG, dry_run=False, today=TODAY)
    org_session.commit()
    assert first.created
    changed = tmp_path / "changed.csv"
    changed.write_bytes((FIXTURES / "bom.csv").read_bytes().replace(b",10,", b",11,"))
    second = ingest_file(org_session, catalogue, changed, ORG, dry_run=False, today=TODAY)
    assert [p.rule for p in second.report.errors] == ["scope.already_reported"]
    assert "--reason" in second.report.errors[0].hint
    assert second.submission_id is None


def test_a_restatement_with_a_reason_supersedes_and_keeps_the_old_version(
    org_session: Session, catalogue: Catalogue, tmp_path: Path
) -> None:
    first = ingest_file(org_session, catalogue, FIXTURES / "bom.csv", ORG, dry_run=False, today=TODAY)
    org_session.commit()
    changed = tmp_path / "changed.csv"
    changed.write_bytes((FIXTURES / "bom.csv").read_bytes().replace(b",10,", b",11,"))
    reason = "late notices from one hotline were counted"
    second = ingest_file(
        org_session, catalogue, changed, ORG, dry_run=False, today=TODAY, supersede_reason=reason
    )
    org_session.commit()
    assert second.report.ok and second.created and second.submission_id != first.submission_id
    old = org_session.get(Submission, first.submission_id)
    new = org_session.get(Submission, second.submission_id)
    assert old is not None and new is not None
    assert (old.version, new.version) == (1, 2)
    assert new.supersedes_id == old.id and new.supersede_reason == reason
    values = {o.submission_id: o.value for o in metric_rows(org_session, "co_notices_received")}
    assert values == {old.id: 10.0, new.id: 11.0}  # the old version is kept
    results = [
        e.details["result"]
        for e in org_session.exec(select(AuditEvent).where(AuditEvent.action == "submission.attempt"))
    ]
    assert results == ["accepted", "accepted"]
    assert all(reason not in str(e.details) for e in org_session.exec(select(AuditEvent)))


def test_cli_restatement_needs_reason(org_env: dict[str, str], tmp_path: Path) -> None:
    url = org_env["HUB_DATABASE_URL"]
    assert run(org_env, "ingest", str(SAMPLES / "aggregate.csv"), "--org", ORG).returncode == 0
    changed = tmp_path / "aggregate.csv"
    changed.write_bytes((SAMPLES / "aggregate.csv").read_bytes().replace(b",1250,", b",1260,"))
    refused = run(org_env, "ingest", str(changed), "--org", ORG)
    assert refused.returncode == 1 and "scope.already_reported" in refused.stderr
    assert "--reason" in refused.stderr
    assert counts(url) == (1, 5)
    restated = run(org_env, "ingest", str(changed), "--org", ORG, "--reason", "a recount")
    assert restated.returncode == 0, restated.stderr
    assert counts(url) == (2, 10)
    engine = build_engine(url)
    try:
        with Session(engine) as session:
            subs = session.exec(select(Submission).order_by(col(Submission.version))).all()
            assert [s.version for s in subs] == [1, 2]
            assert subs[1].supersedes_id == subs[0].id and subs[1].supersede_reason == "a recount"
    finally:
        engine.dispose()
    assert [e.outcome for e in attempts(url)] == ["accepted", "rejected", "accepted"]


# --- audit of every attempt -------------------------------------------------------------------


def test_cli_rejected_attempt_is_audited_without_the_value(org_env: dict[str, str]) -> None:
    url = org_env["HUB_DATABASE_URL"]
    before, audited = counts(url), len(attempts(url))
    secret = "jane.doe@example.org"
    result = run(org_env, "ingest", str(FIXTURES / "email.csv"), "--org", ORG)
    assert result.returncode == 1
    assert counts(url) == before
    new = attempts(url)[audited:]
    assert len(new) == 1
    [event] = new
    checksum = hashlib.sha256((FIXTURES / "email.csv").read_bytes()).hexdigest()
    assert event.outcome == "rejected" and event.organisation_id is not None
    assert event.details["result"] == "rejected" and event.details["channel"] == "cli"
    assert event.details["checksum"] == checksum
    assert event.details["problems"] == {"pd.email": 1}
    table = audit_table_text(url)
    assert checksum in table
    assert secret not in table and "jane.doe" not in table and "email.csv" not in table


def test_cli_dry_run_and_accepted_runs_leave_one_attempt_each(org_env: dict[str, str]) -> None:
    url = org_env["HUB_DATABASE_URL"]
    sample = str(SAMPLES / "aggregate.csv")
    checksum = hashlib.sha256((SAMPLES / "aggregate.csv").read_bytes()).hexdigest()
    assert run(org_env, "ingest", sample, "--org", ORG, "--dry-run").returncode == 0
    assert [e.details["result"] for e in attempts(url)] == ["dry_run"]
    assert run(org_env, "ingest", sample, "--org", ORG).returncode == 0
    assert run(org_env, "ingest", sample, "--org", ORG).returncode == 0
    events = attempts(url)
    assert [e.details["result"] for e in events] == ["dry_run", "accepted", "unchanged"]
    assert {e.details["checksum"] for e in events} == {checksum}
    assert events[1].object_id is not None and events[1].object_id == events[2].object_id
    assert all(e.details["problems"] == {} for e in events)


def test_cli_unknown_organisation_is_audited(org_env: dict[str, str]) -> None:
    url = org_env["HUB_DATABASE_URL"]
    result = run(org_env, "ingest", str(SAMPLES / "aggregate.csv"), "--org", "no-such-org")
    assert result.returncode == 1 and "organisation.unknown" in result.stderr
    [event] = attempts(url)
    assert event.outcome == "rejected" and event.organisation_id is None
    assert "no-such-org" not in audit_table_text(url)


def test_readable_report_is_capped() -> None:
    report = ValidationReport("big.csv", "aggregate-csv", 80)
    for row in range(2, 82):
        report.add(row, "value", "value.negative", "value cannot be negative")
    text = report.to_text()
    assert text.count("value.negative") == 50
    assert "and 30 more problem(s)" in text
    assert json.loads(report.to_json())["error_count"] == 80
