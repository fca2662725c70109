"""Original files: kept 0600 under var_dir/originals for the retention period, then purged.

The submission keeps checksum, row count and validation report for good; orphan files (a
transaction that failed after the file was moved into place) go a day later. Both backends.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hubcli import HubCommands
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.models import AuditEvent, Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.settings import REPO_ROOT, Settings
from ingest.pipeline import ingest_bytes
from ingest.retention import TEMP_PREFIX, originals_dir, plan_purge, purge_expired_originals

HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
SAMPLE = REPO_ROOT / "data" / "samples" / "aggregate.csv"
ORG = "example-platform"
TODAY = datetime(2026, 1, 15, tzinfo=UTC)


@pytest.fixture
def org_session(session: Session) -> Iterator[Session]:
    add_organisation(session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company"))
    session.commit()
    yield session


def _ingest(
    session: Session, catalogue: Catalogue, settings: Settings | None, **kw: object
) -> Submission | None:
    data = kw.pop("data", SAMPLE.read_bytes())
    today = kw.pop("today", TODAY)
    assert isinstance(data, bytes) and isinstance(today, datetime)
    result = ingest_bytes(
        session,
        catalogue,
        data,
        "figures.CSV",
        ORG,
        today=today,
        settings=settings,
        **kw,  # type: ignore[arg-type]
    )
    session.commit()
    return None if result.submission_id is None else session.get(Submission, result.submission_id)


def test_accepted_file_is_kept_privately_until_it_expires(
    org_session: Session, catalogue: Catalogue, settings: Settings
) -> None:
    data = SAMPLE.read_bytes()
    submission = _ingest(org_session, catalogue, settings, dry_run=False)
    assert submission is not None and submission.id is not None
    sha = hashlib.sha256(data).hexdigest()
    assert submission.original_path == f"originals/{submission.id}-{sha}.csv"
    path = settings.var_dir / submission.original_path
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert submission.file_size == len(data)
    assert submission.original_expires_at is not None
    expires = submission.original_expires_at.replace(tzinfo=UTC)
    assert expires == TODAY + timedelta(days=settings.retention_days)
    assert submission.validation_report is not None and submission.validation_report["accepted"] is True
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staged leftover


def test_nothing_is_kept_for_dry_run_rejection_repeat_or_no_settings(
    org_session: Session, catalogue: Catalogue, settings: Settings
) -> None:
    folder = originals_dir(settings)
    assert _ingest(org_session, catalogue, settings, dry_run=True) is None
    bad = SAMPLE.read_bytes().replace(b"1250", b"-1250")
    assert _ingest(org_session, catalogue, settings, dry_run=False, data=bad) is None
    assert not folder.exists() or list(folder.iterdir()) == []
    first = _ingest(org_session, catalogue, settings, dry_run=False)
    again = _ingest(org_session, catalogue, settings, dry_run=False)
    assert first is not None and again is not None and first.id == again.id
    assert len(list(folder.iterdir())) == 1
    other = SAMPLE.read_bytes().replace(b"1250", b"1251")
    no_settings = _ingest(org_session, catalogue, None, dry_run=False, data=other, supersede_reason="recount")
    assert (
        no_settings is not None and no_settings.original_path is None and no_settings.file_size == len(other)
    )
    assert no_settings.validation_report is not None  # persisted on every stored submission
    assert len(list(folder.iterdir())) == 1


def test_zero_retention_keeps_no_file(org_session: Session, catalogue: Catalogue, settings: Settings) -> None:
    zero = settings.model_copy(update={"retention_days": 0})
    submission = _ingest(org_session, catalogue, zero, dry_run=False)
    assert submission is not None and submission.original_path is None
    assert submission.original_expires_at is None
    assert not originals_dir(zero).exists()


def _age(path: Path, days: float) -> None:
    moment = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (moment, moment))


def test_purge_deletes_expired_and_orphans_and_keeps_the_record(
    org_session: Session, catalogue: Catalogue, settings: Settings
) -> None:
    received = datetime.now(UTC)
    submission = _ingest(org_session, catalogue, settings, dry_run=False, today=received)
    assert submission is not None and submission.original_path is not None
    kept = settings.var_dir / submission.original_path
    folder = kept.parent
    old_orphan = folder / f"999999-{'a' * 64}.csv"
    old_staged = folder / f"{TEMP_PREFIX}abc"
    fresh_orphan = folder / f"999998-{'b' * 64}.csv"
    foreign = folder / "notes.txt"
    for path in (old_orphan, old_staged, fresh_orphan, foreign):
        path.write_bytes(b"x")
    for path in (old_orphan, old_staged, foreign):
        _age(path, 2)
    checksum, rows, report = submission.checksum, submission.row_count, submission.validation_report

    now = datetime.now(UTC)
    assert purge_expired_originals(org_session, settings, now) == 2  # orphans only: not expired yet
    org_session.commit()
    assert kept.exists() and fresh_orphan.exists() and foreign.exists()
    assert not old_orphan.exists() and not old_staged.exists()

    later = received + timedelta(days=settings.retention_days, seconds=1)
    # 90 days on, the fresh orphan is old too
    assert purge_expired_originals(org_session, settings, later, dry_run=True) == 2
    assert kept.exists() and fresh_orphan.exists()
    assert purge_expired_originals(org_session, settings, later) == 2
    org_session.commit()
    assert not kept.exists() and not fresh_orphan.exists() and foreign.exists()
    org_session.expire_all()
    stored = org_session.get(Submission, submission.id)
    assert stored is not None and stored.original_path is None
    assert stored.original_deleted_at is not None
    assert (stored.checksum, stored.row_count, stored.validation_report) == (checksum, rows, report)
    purges = org_session.exec(select(AuditEvent).where(AuditEvent.action == "retention.purge")).all()
    assert [p.details for p in purges] == [{"expired": 0, "orphans": 2}, {"expired": 1, "orphans": 1}]
    assert purge_expired_originals(org_session, settings, later) == 0


def test_a_failed_transaction_leaves_an_orphan_that_purge_removes(
    loaded_engine: Engine, catalogue: Catalogue, settings: Settings
) -> None:
    with session_scope(loaded_engine) as session:
        add_organisation(
            session, OrganisationIn(code=ORG, name="Example Platform", stakeholder_type="company")
        )
    with pytest.raises(RuntimeError), session_scope(loaded_engine) as session:
        result = ingest_bytes(
            session,
            catalogue,
            SAMPLE.read_bytes(),
            "a.csv",
            ORG,
            dry_run=False,
            today=TODAY,
            settings=settings,
        )
        assert result.created
        raise RuntimeError("the commit never happens")
    with session_scope(loaded_engine) as session:
        assert session.exec(select(col(Submission.id))).all() == []
        files = list(originals_dir(settings).iterdir())
        assert len(files) == 1  # the named file of a row that was rolled back
        assert plan_purge(session, settings, datetime.now(UTC)).orphans == []  # too fresh to judge
        _age(files[0], 2)
        assert plan_purge(session, settings, datetime.now(UTC)).orphans == files
        assert purge_expired_originals(session, settings) == 1
    assert list(originals_dir(settings).iterdir()) == []


def test_cli_keeps_the_original_and_purges(cli_env: dict[str, str], settings: Settings) -> None:
    run = HubCommands(cli_env, "retention")  # one real process: the first `hub retention`

    assert run("org", "add", ORG, "--name", "Example Platform", "--type", "company").returncode == 0
    assert run("ingest", str(SAMPLE), "--org", ORG).returncode == 0
    files = list(originals_dir(settings).iterdir())
    assert len(files) == 1 and files[0].read_bytes() == SAMPLE.read_bytes()
    dry = run("retention", "purge", "--dry-run")
    assert dry.returncode == 0 and "would delete 0 expired original(s)" in dry.stdout
    purge = run("retention", "purge")
    assert purge.returncode == 0 and "deleted 0 expired original(s)" in purge.stdout
    assert files[0].exists()  # 90 days are not over
