"""Integrity under concurrency and failure, both backends.

Two OS processes storing the same file at the same moment store it once (the unique
(organisation, scope, version) constraint, caught in a SAVEPOINT); a failure or a SIGKILL in
the middle of an ingest leaves the database as it was; every version of a restated scope
stays listed for its organisation.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import hub.store
from hub.catalogue import Catalogue
from hub.db import build_engine
from hub.models import Organisation, Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.settings import Settings
from hub.store import ConcurrentRestatement, store_submission, submission_history
from hub.validation import ObservationIn
from ingest.pipeline import ingest_bytes
from ingest.retention import originals_dir, purge_expired_originals

ORG = "example-platform"
TODAY = datetime(2026, 1, 15, tzinfo=UTC)

CHILD = """
import sys, time
from pathlib import Path
from hub.catalogue import load_catalogue
from hub.db import build_engine, session_scope
from hub.settings import REPO_ROOT, Settings
from ingest.pipeline import ingest_file

url, var_dir, org, barrier, me, *files = sys.argv[1:]
settings = Settings(env="test", database_url=url, var_dir=var_dir)
engine = build_engine(url, busy_timeout_ms=60000)
catalogue = load_catalogue(REPO_ROOT / "data")
with engine.connect():
    pass
for i, name in enumerate(files):
    (Path(barrier) / f"ready-{i}-{me}").touch()
    while not (Path(barrier) / f"go-{i}").exists():
        time.sleep(0.001)
    with session_scope(engine) as session:
        result = ingest_file(session, catalogue, Path(name), org, dry_run=False, settings=settings)
    rules = ",".join(sorted({p.rule for p in result.report.errors})) or "-"
    print(i, int(result.report.ok), int(result.created), result.submission_id, rules, flush=True)
"""

KILLED = """
import os, signal, sys
import hub.store
from pathlib import Path
from hub.catalogue import load_catalogue
from hub.db import build_engine, session_scope
from hub.settings import REPO_ROOT, Settings
from ingest.pipeline import ingest_file

url, var_dir, org, name = sys.argv[1:]
real = hub.store._insert_observations

def half_then_die(session, records):
    real(session, records[: len(records) // 2])
    session.flush()
    os.kill(os.getpid(), signal.SIGKILL)

hub.store._insert_observations = half_then_die
settings = Settings(env="test", database_url=url, var_dir=var_dir)
engine = build_engine(url)
with session_scope(engine) as session:
    ingest_file(session, load_catalogue(REPO_ROOT / "data"), Path(name), org, dry_run=False, settings=settings)
"""


def _aggregate(path: Path, period: str, value: int, rows: int = 1) -> Path:
    countries = ["", "NA", "NL", "FR", "DE", "BE", "IT", "ES", "PT", "AT"][:rows]
    lines = [f"{ORG},{period},co_notices_received,{c},{value + i},count," for i, c in enumerate(countries)]
    path.write_text("reporter,period,metric,country,value,unit,flag\n" + "\n".join(lines) + "\n")
    return path


def _snapshot(engine: Engine) -> dict[str, int]:
    """Row count of every table: 'the database as it was'."""
    with engine.connect() as connection:
        return {
            name: int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
            for name in inspect(connection).get_table_names()
        }


@pytest.fixture
def org_session(session: Session) -> Iterator[Session]:
    add_organisation(session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company"))
    session.commit()
    yield session


def _org(session: Session) -> Organisation:
    organisation = session.exec(select(Organisation).where(Organisation.code == ORG)).one()
    return organisation


@pytest.mark.slow
def test_two_processes_racing_with_the_same_files_store_each_once(
    org_session: Session, settings: Settings, tmp_path: Path
) -> None:
    rounds = 4
    files = [
        str(_aggregate(tmp_path / f"f{i}.csv", f"2024-{i + 1:02d}", 100 + i, rows=5)) for i in range(rounds)
    ]
    # last round: two different files for the same new scope
    files_b = [*files[:-1], str(_aggregate(tmp_path / "other.csv", f"2024-{rounds:02d}", 900, rows=5))]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    common = [str(settings.database_url), str(settings.var_dir), ORG, str(barrier)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *common, me, *batch],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, batch in (("a", files), ("b", files_b))
    ]
    try:
        for i in range(rounds):
            deadline = time.monotonic() + 120
            while not all((barrier / f"ready-{i}-{me}").exists() for me in "ab"):
                assert time.monotonic() < deadline, "children did not get ready"
                assert all(c.poll() is None for c in children), [c.communicate() for c in children]
                time.sleep(0.005)
            (barrier / f"go-{i}").touch()
        outputs = [c.communicate(timeout=180) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    results = [[line.split() for line in out.splitlines()] for out, _ in outputs]
    for i in range(rounds - 1):
        a, b = results[0][i], results[1][i]
        assert a[1] == b[1] == "1", (a, b)  # both accepted
        assert sorted([a[2], b[2]]) == ["0", "1"], (a, b)  # one created, one found it
        assert a[3] == b[3]  # the same submission
    a, b = results[0][-1], results[1][-1]
    assert sorted([a[1], b[1]]) == ["0", "1"], (a, b)  # different figures: one stored, one refused
    refused = a if a[1] == "0" else b
    assert refused[4] in {"scope.restated_concurrently", "scope.already_reported"}
    org_session.expire_all()
    scopes = [s.scope for s in org_session.exec(select(Submission))]
    assert sorted(scopes) == sorted({f"2024-{i + 1:02d}" for i in range(rounds)})
    kept = sorted(p.name.split("-")[0] for p in originals_dir(settings).iterdir())
    assert len(kept) == rounds  # one original per stored submission, no staged leftovers


def _rows(value: float) -> list[ObservationIn]:
    return [ObservationIn("co_notices_received", parse_period("2025-Q1"), value)]


def test_losing_the_race_returns_the_winner_or_a_clear_error(
    org_session: Session, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate the other process: v1 is committed after our read of the latest version."""
    organisation = _org(org_session)
    winner = store_submission(
        org_session, catalogue, organisation, _rows(5), channel="cli", scope="2025-Q1", actor="t", today=TODAY
    )
    org_session.commit()
    real = hub.store._latest_version
    calls: list[int] = []

    def stale_first(session: Session, organisation_id: int, scope: str) -> Submission | None:
        calls.append(1)
        return None if len(calls) == 1 else real(session, organisation_id, scope)

    monkeypatch.setattr(hub.store, "_latest_version", stale_first)
    same = store_submission(
        org_session, catalogue, organisation, _rows(5), channel="api", scope="2025-Q1", actor="t", today=TODAY
    )
    assert (same.submission_id, same.created) == (winner.submission_id, False)
    org_session.commit()  # the session survived the refused insert
    calls.clear()
    with pytest.raises(ConcurrentRestatement, match="just restated by another submission"):
        store_submission(
            org_session,
            catalogue,
            organisation,
            _rows(6),
            channel="api",
            scope="2025-Q1",
            actor="t",
            today=TODAY,
        )
    org_session.rollback()
    calls.clear()
    data = b"reporter,period,metric,value,unit\n" + f"{ORG},2025-Q1,co_notices_received,7,count\n".encode()
    result = ingest_bytes(org_session, catalogue, data, "x.csv", ORG, dry_run=False, today=TODAY)
    assert [p.rule for p in result.report.errors] == ["scope.restated_concurrently"]
    org_session.commit()
    assert len(org_session.exec(select(Submission)).all()) == 1


def test_a_failure_half_way_leaves_the_database_as_it_was(
    org_session: Session,
    catalogue: Catalogue,
    loaded_engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    before = _snapshot(loaded_engine)
    real = hub.store._insert_observations

    def half_then_fail(session: Session, records: list[dict[str, object]]) -> None:
        real(session, records[: len(records) // 2])
        session.flush()
        raise OSError("disk gone")

    monkeypatch.setattr(hub.store, "_insert_observations", half_then_fail)
    data = _aggregate(tmp_path / "a.csv", "2025-01", 10, rows=10).read_bytes()
    with pytest.raises(OSError):
        ingest_bytes(
            org_session, catalogue, data, "a.csv", ORG, dry_run=False, today=TODAY, settings=settings
        )
    org_session.rollback()
    assert _snapshot(loaded_engine) == before
    assert not originals_dir(settings).exists() or list(originals_dir(settings).iterdir()) == []


@pytest.mark.slow
def test_a_killed_process_leaves_the_database_as_it_was(
    org_session: Session, loaded_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    before = _snapshot(loaded_engine)
    path = _aggregate(tmp_path / "big.csv", "2025-02", 10, rows=10)
    child = subprocess.run(
        [sys.executable, "-c", KILLED, settings.database_url, str(settings.var_dir), ORG, str(path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    engine = build_engine(settings.database_url)  # a fresh connection, as the next process would
    try:
        assert _snapshot(engine) == before
    finally:
        engine.dispose()
    staged = list(originals_dir(settings).iterdir())
    assert all(p.name.startswith(".incoming-") for p in staged)  # no named original without a row
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    assert purge_expired_originals(org_session, settings, later) == len(staged)


def test_restated_versions_stay_visible_with_reason_and_warnings(
    org_session: Session, catalogue: Catalogue
) -> None:
    def ingest(value: int, reason: str | None = None) -> Any:
        data = f"reporter,period,metric,value,unit\n{ORG},2025-Q1,co_notices_received,{value},count\n"
        return ingest_bytes(
            org_session,
            catalogue,
            data.encode(),
            "q.csv",
            ORG,
            dry_run=False,
            today=TODAY,
            supersede_reason=reason,
        )

    first = ingest(100)
    second = ingest(120, "late notices counted")
    org_session.commit()
    organisation = _org(org_session)
    assert organisation.id is not None
    history = submission_history(org_session, organisation.id)
    assert [(h.submission_id, h.version, h.is_current) for h in history] == [
        (second.submission_id, 2, True),
        (first.submission_id, 1, False),
    ]
    assert history[0].supersedes_id == first.submission_id
    assert history[0].supersede_reason == "late notices counted"
    assert history[1].supersede_reason is None and history[0].warning_count == 0
    assert submission_history(org_session, organisation.id, scope="2024") == []
    other = add_organisation(
        org_session, OrganisationIn(code="other-co", name="Other", stakeholder_type="company")
    )
    assert other.id is not None and submission_history(org_session, other.id) == []
