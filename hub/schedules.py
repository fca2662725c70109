"""Scheduled outputs for the secretariat: exports of the latest published release, on a cron
schedule, delivered to a folder or by e-mail; every run recorded.

- **Jobs** come from the configuration file (``HUB_SCHEDULES_FILE``, YAML, synced at every
  tick) or from the secretariat (``define_job``, the dashboards' form).
- **Exactly once per job and fire time.** A run is claimed by inserting its
  ``scheduled_run`` row; the unique (job, fire time) constraint makes a second process's
  insert fail, so several schedulers started by mistake still produce one run.
- **Catch-up.** Each tick looks for the latest fire time at or before now (and after the
  job was defined) that has no run; a run missed while no scheduler was up is made at the
  next start. Older missed fire times are not replayed one by one: they would export the
  same latest release again.
- **Retries and alerts.** A failed attempt is retried after 1, 4, 16, ... minutes (the job's
  ``max_attempts`` in all); then the run is ``failed`` and the secretariat's alert mailbox
  (``HUB_ALERT_EMAIL``) gets one e-mail. A run left ``running`` by a killed process for
  longer than ``STALE_AFTER`` counts as a failed attempt.
- **Files** are written atomically (hub/files.py); a run records each file's name, size and
  SHA-256.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.errors import HubError
from hub.exports import FORMATS, export_release
from hub.mail import Mailer, safe_error
from hub.models import ScheduledJob, ScheduledRun, User
from hub.releases import latest_published_release
from hub.settings import Settings

log = logging.getLogger(__name__)

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
REPORT = re.compile(r"alliance|country:[A-Z]{2}")
MAILBOX = re.compile(r"[^@\s,;<>]{1,64}@[A-Za-z0-9.-]{1,200}\.[A-Za-z]{2,}")
BACKOFF_BASE = timedelta(minutes=1)  # then x4 per attempt: 1, 4, 16, 64 minutes
STALE_AFTER = timedelta(hours=2)
LOOK_BACK = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
)


class ScheduleError(HubError):
    """A scheduled job is not valid, or a run cannot deliver."""


class JobSpec(BaseModel):
    """One job as written in the configuration file or the secretariat's form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    cron: str = Field(description="Five fields: minute hour day month weekday.")
    timezone: str = "UTC"
    formats: tuple[str, ...] = ()
    reports: tuple[str, ...] = Field(default=(), description="alliance, or country:XX (ISO code)")
    folder: str | None = None
    email: tuple[str, ...] = ()
    max_attempts: int = Field(default=4, ge=1, le=10)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("lower-case letters, digits and '-', at most 64")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format {', '.join(unknown)}; known: {', '.join(FORMATS)}")
        return tuple(dict.fromkeys(value))

    @field_validator("reports")
    @classmethod
    def _reports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in value if not REPORT.fullmatch(r)]
        if bad:
            raise ValueError(f"unknown report {', '.join(b[:20] for b in bad)}; known: alliance, country:XX")
        return tuple(dict.fromkeys(value))

    @field_validator("email")
    @classmethod
    def _mailboxes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [m for m in value if not MAILBOX.fullmatch(m)]
        if bad:
            raise ValueError(f"{len(bad)} mailbox(es) not of the form name@domain.tld")
        return value

    @model_validator(mode="after")
    def _checks(self) -> JobSpec:
        trigger(self.cron, self.timezone)  # raises ValueError on a bad expression
        if not self.formats and not self.reports:
            raise ValueError("produce export formats, reports, or both")
        if (self.folder is None) == (not self.email):
            raise ValueError("deliver to a folder or to e-mail addresses (one of them)")
        return self

    @property
    def delivery(self) -> str:
        return "folder" if self.folder is not None else "email"

    @property
    def destination(self) -> str:
        return self.folder if self.folder is not None else ", ".join(self.email)


DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_day(token: str) -> int:
    """A weekday of a crontab: 0 or 7 is Sunday, 1 Monday, ...; or its English abbreviation."""
    if token in DAY_NAMES:
        return DAY_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    raise ValueError(f"weekday {token!r} is not 0-7 or sun-sat")


def crontab_weekdays(field: str) -> str:
    """The weekday field of a crontab in APScheduler's terms.

    APScheduler 3 numbers weekdays from Monday = 0, and ``CronTrigger.from_crontab`` passes the
    numbers through, so "0 6 * * 1" would fire on Tuesdays. The days are spelt out by name
    instead ("1-5" becomes "mon,tue,wed,thu,fri")."""
    text = field.strip().lower()
    if text == "*":
        return text
    days: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else 1
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"weekday step {step_text!r} is not a positive number")
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _cron_day(first), _cron_day(last)
            high = 7 if high == 0 and low > 0 else high
            if high < low:
                raise ValueError(f"weekday range {base!r} runs backwards")
        else:
            low = high = _cron_day(base)
            high = 6 if slash else high
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(DAY_NAMES[day] for day in sorted(days))


def trigger(cron: str, timezone: str) -> Any:
    """APScheduler's cron trigger for a five-field crontab expression in a time zone."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) != 5:
        raise ValueError("a cron expression has five fields: minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone=ZoneInfo(timezone),
    )


def load_job_specs(path: Path) -> list[JobSpec]:
    """The jobs of a configuration file; every problem reported at once, with the job's place."""
    if not path.is_file():
        return []
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ScheduleError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    entries = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ScheduleError(f"{path}: expected a list under 'jobs'")
    specs, problems = [], []
    for index, entry in enumerate(entries, start=1):
        try:
            specs.append(JobSpec.model_validate(entry))
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'job'}: {e['msg']}" for e in exc.errors())
            problems.append(f"job {index}: {reasons}")
    names = [s.name for s in specs]
    problems += [f"job name {n!r} used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise ScheduleError(f"{path}: " + " | ".join(problems))
    return specs


def _apply(job: ScheduledJob, spec: JobSpec) -> None:
    job.cron, job.timezone = spec.cron, spec.timezone
    job.formats, job.reports = list(spec.formats), list(spec.reports)
    job.delivery, job.destination = spec.delivery, spec.destination
    job.max_attempts, job.enabled = spec.max_attempts, spec.enabled


def _fields(job: ScheduledJob) -> tuple[object, ...]:
    return (
        job.cron,
        job.timezone,
        job.formats,
        job.reports,
        job.delivery,
        job.destination,
        job.max_attempts,
        job.enabled,
    )


def sync_configured_jobs(session: Session, specs: Sequence[JobSpec]) -> list[str]:
    """Make the configuration's jobs the ``config`` jobs in the database (a job removed from
    the file is disabled, its runs kept). What changed, one line each."""
    existing = {job.name: job for job in session.exec(select(ScheduledJob))}
    changes = []
    for spec in specs:
        job = existing.get(spec.name)
        if job is not None and job.source != "config":
            raise ScheduleError(
                f"job {spec.name!r} was defined by the secretariat; rename the configured one"
            )
        if job is None:
            job = ScheduledJob(
                name=spec.name, source="config", delivery=spec.delivery, destination="", cron=""
            )
            changes.append(f"added {spec.name}")
        before = _fields(job)
        _apply(job, spec)
        after = _fields(job)
        if job.id is not None and before != after:
            changes.append(f"changed {spec.name}")
        session.add(job)
    configured = {s.name for s in specs}
    for name, job in existing.items():
        if job.source == "config" and name not in configured and job.enabled:
            job.enabled = False
            session.add(job)
            changes.append(f"disabled {name} (no longer configured)")
    session.flush()
    return changes


def define_job(session: Session, actor: User, spec: JobSpec) -> ScheduledJob:
    """A job defined by the secretariat (the dashboards' form); names are unique."""
    from hub import audit
    from hub.approval import require_reviewer

    require_reviewer(actor)
    if session.exec(select(ScheduledJob).where(ScheduledJob.name == spec.name)).first() is not None:
        raise ScheduleError(f"a job named {spec.name!r} exists already")
    job = ScheduledJob(
        name=spec.name,
        source="secretariat",
        delivery=spec.delivery,
        destination="",
        cron="",
        created_by_id=actor.id,
    )
    _apply(job, spec)
    session.add(job)
    session.flush()
    audit.record(
        session,
        "schedule.define",
        actor_label="web",
        actor_user_id=actor.id,
        object_type="scheduled_job",
        object_id=job.id,
        details={"name": spec.name, "cron": spec.cron},
    )
    return job


def set_job_enabled(session: Session, actor: User, job_id: int, enabled: bool) -> ScheduledJob:
    from hub import audit
    from hub.approval import require_reviewer

    require_reviewer(actor)
    job = session.get(ScheduledJob, job_id)
    if job is None:
        raise ScheduleError(f"no scheduled job {job_id}")
    job.enabled = enabled
    session.add(job)
    audit.record(
        session,
        "schedule.enable" if enabled else "schedule.disable",
        actor_label="web",
        actor_user_id=actor.id,
        object_type="scheduled_job",
        object_id=job_id,
    )
    session.flush()
    return job


# --- when ---------------------------------------------------------------------------------


def latest_fire_time(cron: str, timezone: str, now: datetime, since: datetime) -> datetime | None:
    """The newest fire time of the schedule in [since, now], in UTC; None if there is none."""
    schedule = trigger(cron, timezone)
    for window in LOOK_BACK:
        start = max(since, now - window)
        fire = schedule.get_next_fire_time(None, start)
        if fire is None or fire > now:
            if start == since:
                return None
            continue
        while True:
            following = schedule.get_next_fire_time(fire, fire + timedelta(seconds=1))
            if following is None or following > now:
                return fire.astimezone(UTC)
            fire = following
    return None


def backoff(attempts: int) -> timedelta:
    return BACKOFF_BASE * (4 ** max(0, attempts - 1))


# --- a run ----------------------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}"


def claim_run(engine: Engine, job: ScheduledJob, scheduled_for: datetime, now: datetime) -> int | None:
    """Insert the run of ``job`` at ``scheduled_for``; its id, or None when another process has it."""
    assert job.id is not None
    try:
        with session_scope(engine) as session:
            run = ScheduledRun(
                job_id=job.id,
                scheduled_for=scheduled_for,
                status="running",
                started_at=now,
                worker=worker_name(),
            )
            session.add(run)
            session.flush()
            return run.id
    except IntegrityError:
        return None


@dataclass(frozen=True)
class Delivered:
    release: int
    files: list[dict[str, Any]]


Producer = Callable[[Engine, Settings, Catalogue, ScheduledJob, Path], Delivered]


def produce_exports(
    engine: Engine, settings: Settings, catalogue: Catalogue, job: ScheduledJob, folder: Path
) -> Delivered:
    """Export the latest published release in the job's formats into ``folder`` (the job's
    reports are made by the producer the scheduler process passes: reports.scheduled)."""
    with Session(engine) as session:
        release = latest_published_release(session)
        if release is None:
            raise ScheduleError("no published release to export")
        if not job.formats:
            return Delivered(release.number, [])
        export = export_release(session, catalogue, release.number, job.formats, folder)
    prefix = export.folder.name
    files = [{"name": f"{prefix}/{f.name}", "size": f.size, "sha256": f.sha256} for f in export.files]
    return Delivered(release.number, files)


def _folder(settings: Settings, destination: str) -> Path:
    folder = Path(destination)
    return folder if folder.is_absolute() else settings.var_dir / folder


def _deliver(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    job: ScheduledJob,
    run_id: int,
    produce: Producer,
) -> Delivered:
    if job.delivery == "folder":
        return produce(engine, settings, catalogue, job, _folder(settings, job.destination))
    if not settings.smtp_host:
        raise ScheduleError("e-mail delivery needs HUB_SMTP_HOST")
    staging = settings.var_dir / "scheduled" / f"{job.name}-{run_id}"
    delivered = produce(engine, settings, catalogue, job, staging)
    size = sum(int(f["size"]) for f in delivered.files)
    if size > settings.schedule_email_max_bytes:
        raise ScheduleError(
            f"{size / 1e6:.1f} MB is more than e-mail takes ({settings.schedule_email_max_bytes / 1e6:.0f} MB): "
            "deliver these formats to a folder"
        )
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = job.destination
    message["Subject"] = f"[hub] {job.name}: release {delivered.release}"
    lines = [f"Scheduled output {job.name} of release {delivered.release}.", "", "SHA-256 of the files:"]
    lines += [f"{f['sha256']}  {f['name']}" for f in delivered.files]
    message.set_content("\n".join(lines) + "\n")
    for entry in delivered.files:
        path = staging / str(entry["name"])
        message.add_attachment(
            path.read_bytes(), maintype="application", subtype="octet-stream", filename=path.name
        )
    mailer = Mailer(settings)
    try:
        mailer.send(message)
    finally:
        mailer.close()
    return delivered


def execute_run(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    run_id: int,
    produce: Producer = produce_exports,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ScheduledRun:
    """Make the claimed run ``run_id``; record success, or a retry, or the final failure."""
    with Session(engine) as session:
        run = session.get(ScheduledRun, run_id)
        job = session.get(ScheduledJob, run.job_id) if run is not None else None
    if run is None or job is None:
        raise ScheduleError(f"no scheduled run {run_id}")
    started = time.perf_counter()
    try:
        delivered = _deliver(engine, settings, catalogue, job, run_id, produce)
    except Exception as exc:
        error = _describe(exc, settings, job)
        log.warning("scheduled job %s (run %s, attempt %s) failed: %s", job.name, run_id, run.attempts, error)
        return _failed(engine, settings, job, run_id, error, time.perf_counter() - started, now())
    with session_scope(engine) as session:
        done = session.get(ScheduledRun, run_id)
        assert done is not None
        done.status, done.finished_at = "succeeded", now()
        done.duration_seconds = round(time.perf_counter() - started, 3)
        done.release_number, done.files, done.error, done.next_attempt_at = (
            delivered.release,
            delivered.files,
            None,
            None,
        )
        session.add(done)
    log.info("scheduled job %s: release %s, %d file(s)", job.name, delivered.release, len(delivered.files))
    return done


def _describe(exc: BaseException, settings: Settings, job: ScheduledJob) -> str:
    """What went wrong, without a secret or a mailbox address."""
    if isinstance(exc, HubError):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = safe_error(exc, settings, job.destination if job.delivery == "email" else None)
    for mailbox in job.destination.split(", ") if job.delivery == "email" else ():
        text = text.replace(mailbox, "***")
    return text[:300]


def _failed(
    engine: Engine,
    settings: Settings,
    job: ScheduledJob,
    run_id: int,
    error: str,
    duration: float,
    now: datetime,
) -> ScheduledRun:
    with session_scope(engine) as session:
        run = session.get(ScheduledRun, run_id)
        assert run is not None
        run.error, run.duration_seconds, run.finished_at = error, round(duration, 3), now
        if run.attempts < job.max_attempts:
            run.status, run.next_attempt_at = "retrying", now + backoff(run.attempts)
        else:
            run.status, run.next_attempt_at = "failed", None
            if _alert(settings, job, run):
                run.alerted_at = now
        session.add(run)
    return run


def _alert(settings: Settings, job: ScheduledJob, run: ScheduledRun) -> bool:
    """One e-mail to the secretariat's alert mailbox about a run that failed for good."""
    if not (settings.smtp_host and settings.alert_email):
        log.error("scheduled job %s failed for good (run %s); no alert mailbox configured", job.name, run.id)
        return False
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = settings.alert_email
    message["Subject"] = f"[hub] scheduled job {job.name} failed"
    message.set_content(
        f"The scheduled job {job.name} (run {run.id}, due {run.scheduled_for:%Y-%m-%d %H:%M} UTC) failed "
        f"{run.attempts} time(s) and will not be tried again.\n\nLast error: {run.error}\n\n"
        "The run is listed on the secretariat's page of the hub.\n"
    )
    mailer = Mailer(settings)
    try:
        mailer.send(message)
    except Exception as exc:  # an alert that cannot go out is logged, never raised
        log.error("alert for job %s not sent: %s", job.name, safe_error(exc, settings, settings.alert_email))
        return False
    finally:
        mailer.close()
    return True


def _claim_retry(engine: Engine, run: ScheduledRun, now: datetime) -> bool:
    """Take a due retry (or a stale run) for this process: an update that only one process's
    compare-and-set can win."""
    with session_scope(engine) as session:
        result = session.execute(
            update(ScheduledRun)
            .where(
                col(ScheduledRun.id) == run.id,
                col(ScheduledRun.status) == run.status,
                col(ScheduledRun.attempts) == run.attempts,
            )
            .values(status="running", attempts=run.attempts + 1, started_at=now, worker=worker_name())
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


@dataclass
class TickResult:
    started: list[str]
    retried: list[str]
    summary: str


def tick(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    now: datetime | None = None,
    produce: Producer = produce_exports,
) -> TickResult:
    """One pass of the scheduler: sync the configured jobs, start each job's due run (the
    latest fire time without a run), and take up due retries and stale runs."""
    moment = now or datetime.now(UTC)
    clock: Callable[[], datetime] = (lambda: moment) if now is not None else (lambda: datetime.now(UTC))
    with session_scope(engine) as session:
        changes = sync_configured_jobs(session, load_job_specs(settings.schedules_file))
        jobs = list(session.exec(select(ScheduledJob).where(col(ScheduledJob.enabled))))
        stale_before = moment - STALE_AFTER
        due_retries = list(
            session.exec(
                select(ScheduledRun).where(
                    (col(ScheduledRun.status) == "retrying") & (col(ScheduledRun.next_attempt_at) <= moment)
                    | (col(ScheduledRun.status) == "running") & (col(ScheduledRun.started_at) < stale_before)
                )
            )
        )
    for change in changes:
        log.info("scheduled jobs: %s", change)
    started: list[str] = []
    for job in jobs:
        fire = latest_fire_time(job.cron, job.timezone, moment, job.created_at)
        if fire is None:
            continue
        with Session(engine) as session:
            known = session.exec(
                select(ScheduledRun.id).where(
                    ScheduledRun.job_id == job.id, ScheduledRun.scheduled_for == fire
                )
            ).first()
        if known is not None:
            continue
        run_id = claim_run(engine, job, fire, moment)
        if run_id is None:
            continue  # another scheduler process has it
        started.append(job.name)
        execute_run(engine, settings, catalogue, run_id, produce, now=clock)
    retried: list[str] = []
    by_id = {job.id: job for job in jobs}
    for run in due_retries:
        owner = by_id.get(run.job_id)
        if owner is None or run.id is None:
            continue
        if run.status == "running":  # left by a killed process: that attempt failed
            _failed(engine, settings, owner, run.id, "the process running it stopped", 0.0, moment)
            continue
        if _claim_retry(engine, run, moment):
            retried.append(owner.name)
            execute_run(engine, settings, catalogue, run.id, produce, now=clock)
    summary = f"{len(started)} run(s) started, {len(retried)} retried"
    return TickResult(started, retried, summary)


def recent_runs(session: Session, limit: int = 50) -> list[tuple[ScheduledRun, ScheduledJob]]:
    """The newest runs with their jobs, for the secretariat's page and ``hub schedule runs``."""
    query = (
        select(ScheduledRun, ScheduledJob)
        .join(ScheduledJob, col(ScheduledJob.id) == ScheduledRun.job_id)
        .order_by(col(ScheduledRun.scheduled_for).desc(), col(ScheduledRun.id).desc())
        .limit(limit)
    )
    return [(run, job) for run, job in session.exec(query).all()]


def list_jobs(session: Session) -> list[ScheduledJob]:
    return list(session.exec(select(ScheduledJob).order_by(col(ScheduledJob.name))))
