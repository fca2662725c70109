"""Original submitted files: kept for reprocessing during the retention period, then deleted.

An accepted submission's bytes go to ``var_dir/originals/<submission id>-<sha256>.<ext>``
(directory 0700, file 0600), named by nothing the submitter chose. The file is first written
under a temporary name and moved into place once the submission row exists (after the
flush), so a failed ingest leaves no file with a name; a transaction that fails after the
move leaves a named file without a row, which :func:`purge_expired_originals` removes as an
orphan a day later. After ``retention_days`` (0: never kept) the file is deleted; the
submission keeps its checksum, row count and validation report for good.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session, col, select

from hub import audit
from hub.models import Submission
from hub.settings import Settings

log = logging.getLogger(__name__)

ORIGINALS = "originals"
TEMP_PREFIX = ".incoming-"
ORPHAN_AGE = timedelta(days=1)
_EXTENSIONS = {".csv": "csv", ".json": "json", ".xlsx": "xlsx"}
_KEPT_NAME = re.compile(r"^(\d+)-[0-9a-f]{64}\.[a-z]+$")


def originals_dir(settings: Settings) -> Path:
    return settings.var_dir / ORIGINALS


def _ensure_dir(settings: Settings) -> Path:
    folder = originals_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    return folder


def stage_original(settings: Settings | None, data: bytes) -> Path | None:
    """Write ``data`` under a temporary name in the originals folder; None when not kept.

    Not fsynced: the database row (checksum, row count, report, observations) is the record
    and is committed durably; the original is a convenience copy for reprocessing, and an
    fsync per submission would cost more than the rest of a small API batch. A copy lost to
    a power cut is found by its checksum not matching (or its absence), never silently used.
    """
    if settings is None or settings.retention_days == 0:
        return None
    folder = _ensure_dir(settings)
    path = folder / f"{TEMP_PREFIX}{secrets.token_hex(12)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def discard_staged(staged: Path | None) -> None:
    """Remove a staged file that will not be kept (rejected, unchanged, or failed)."""
    if staged is not None:
        staged.unlink(missing_ok=True)


def keep_original(settings: Settings, staged: Path, submission: Submission, source_name: str) -> Path:
    """Move ``staged`` into place as ``submission``'s original and record where and until when."""
    assert submission.id is not None
    extension = _EXTENSIONS.get(Path(source_name).suffix.lower(), "bin")
    relative = Path(ORIGINALS) / f"{submission.id}-{submission.checksum}.{extension}"
    target = settings.var_dir / relative
    os.replace(staged, target)
    submission.original_path = relative.as_posix()
    received = submission.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    submission.original_expires_at = received + timedelta(days=settings.retention_days)
    return target


@dataclass
class PurgePlan:
    """What a purge deletes: expired originals (by submission id) and orphan files."""

    expired: list[int] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.expired) + len(self.orphans)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def plan_purge(session: Session, settings: Settings, now: datetime) -> PurgePlan:
    """Expired originals, and files older than a day that no submission row names."""
    plan = PurgePlan()
    kept = session.exec(
        select(Submission.id, Submission.original_path, Submission.original_expires_at).where(
            col(Submission.original_path).is_not(None)
        )
    ).all()
    named = set()
    for submission_id, kept_path, expires in kept:
        named.add(kept_path)
        if submission_id is not None and (expires is None or _aware(expires) <= now):
            plan.expired.append(submission_id)
    folder = originals_dir(settings)
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            relative = f"{ORIGINALS}/{path.name}"
            if relative in named or not path.is_file():
                continue
            if not (path.name.startswith(TEMP_PREFIX) or _KEPT_NAME.match(path.name)):
                continue  # not a file the hub wrote: leave it alone
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            if now - modified >= ORPHAN_AGE:
                plan.orphans.append(path)
    return plan


def purge_expired_originals(
    session: Session, settings: Settings, now: datetime | None = None, *, dry_run: bool = False
) -> int:
    """Delete originals past their expiry and orphan files; return how many files go.

    The submission keeps checksum, row count and validation report; ``original_path`` becomes
    None and ``original_deleted_at`` tells when. The caller commits.
    """
    now = now or datetime.now(UTC)
    plan = plan_purge(session, settings, now)
    if dry_run:
        return plan.count
    for submission_id in plan.expired:
        submission = session.get(Submission, submission_id)
        assert submission is not None and submission.original_path is not None
        (settings.var_dir / submission.original_path).unlink(missing_ok=True)
        submission.original_path = None
        submission.original_deleted_at = now
        session.add(submission)
    for path in plan.orphans:
        path.unlink(missing_ok=True)
    if plan.count:
        audit.record(
            session,
            "retention.purge",
            actor_label="retention",
            details={"expired": len(plan.expired), "orphans": len(plan.orphans)},
        )
    session.flush()
    log.info(
        "retention purge: %d expired original(s), %d orphan file(s)", len(plan.expired), len(plan.orphans)
    )
    return plan.count


retention_app = typer.Typer(no_args_is_help=True, help="Original submitted files kept for reprocessing.")


@retention_app.command("purge")
def purge_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete originals past HUB_RETENTION_DAYS and orphan files (run daily, e.g. from cron)."""
    from hub.cli import _settings
    from hub.db import get_engine, session_scope

    settings = _settings()
    now = datetime.now(UTC)
    with session_scope(get_engine(settings)) as session:
        plan = plan_purge(session, settings, now)
        if not dry_run:
            purge_expired_originals(session, settings, now)
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {len(plan.expired)} expired original(s) and {len(plan.orphans)} orphan file(s)")
