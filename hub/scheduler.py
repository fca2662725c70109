"""The hub's background jobs: one registry (:data:`JOBS`), run by APScheduler or once from cron.

Each job is a plain function of a :class:`JobContext` (the process's one engine, the settings,
the catalogue) that returns a short summary line. Jobs must be idempotent and safe to run at any
time: ``hub scheduler --once`` runs every one of them once (for cron), and two processes may run
the same job. A job's exception is logged by type and stack only (its message could quote a
submitted value) and never stops the scheduler or the other jobs.

To add a job, append one :class:`Job` to :data:`JOBS`.
"""

from __future__ import annotations

import logging
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.engine import Engine

from hub.catalogue import Catalogue
from hub.settings import Settings

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.base import BaseTrigger

logger = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 60


@dataclass(frozen=True)
class JobContext:
    """What every job gets: the process's one engine, its settings and the catalogue."""

    engine: Engine
    settings: Settings
    catalogue: Catalogue


@dataclass(frozen=True)
class Job:
    """A registered job: its id, what it does, and a factory of its APScheduler trigger."""

    job_id: str
    function: Callable[[JobContext], str]
    trigger: Callable[[], BaseTrigger]
    description: str


def _every_minute() -> BaseTrigger:
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(minutes=1, timezone=UTC)


def run_connectors_job(context: JobContext) -> str:
    """Run the due pull connectors (each isolated from the others)."""
    from ingest.connectors import run_due_connectors

    runs = run_due_connectors(context.engine, context.settings, context.catalogue, datetime.now(UTC))
    results: dict[str, int] = {}
    for run in runs:
        results[run.result] = results.get(run.result, 0) + 1
    detail = ", ".join(f"{count} {result}" for result, count in sorted(results.items()))
    return f"{len(runs)} connector(s) ran" + (f": {detail}" if detail else "")


def _hourly() -> BaseTrigger:
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(hours=1, timezone=UTC)


def run_reminders_job(context: JobContext) -> str:
    """Queue the reporting reminders that are due and send what is queued (once per stage)."""
    from hub.reminders import run_reminders

    summary = run_reminders(context.engine, context.settings, context.catalogue).summary()
    return summary.removeprefix("reminders: ")


def _daily() -> BaseTrigger:
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger(hour=3, minute=17, timezone=UTC)


def run_retention_job(context: JobContext) -> str:
    """Delete original files past the retention period (checksum, rows and report stay)."""
    from hub.db import session_scope
    from ingest.retention import purge_expired_originals

    with session_scope(context.engine) as session:
        deleted = purge_expired_originals(session, context.settings)
    return f"{deleted} original file(s) deleted"


def run_outputs_job(context: JobContext) -> str:
    """Scheduled exports (hub/schedules.py): the due run of each job, retries, catch-up."""
    from hub.schedules import tick
    from reports.scheduled import produce_outputs  # exports and PDF reports

    return tick(context.engine, context.settings, context.catalogue, produce=produce_outputs).summary


def run_builds_job(context: JobContext) -> str:
    """Release builds the secretariat asked for on its page (hub/build_requests.py)."""
    from hub.build_requests import run_next_build

    return run_next_build(context.engine, context.catalogue, context.settings.data_dir)


# The one registry of background jobs.
JOBS: list[Job] = [
    Job("connectors", run_connectors_job, _every_minute, "run the pull connectors that are due"),
    Job("builds", run_builds_job, _every_minute, "build the releases the secretariat asked for"),
    Job("outputs", run_outputs_job, _every_minute, "scheduled exports: due runs, retries, catch-up"),
    Job("reminders", run_reminders_job, _hourly, "queue and send reporting reminders"),
    Job("retention", run_retention_job, _daily, "delete original files past the retention period"),
]


def _log_failure(job_id: str, exc: BaseException) -> None:
    stack = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("job %s failed: %s\n%s", job_id, type(exc).__name__, stack)


def run_job(job: Job, context: JobContext) -> str:
    """Run one job, logging instead of raising: a failing job never takes the scheduler down."""
    try:
        summary = job.function(context)
    except Exception as exc:
        _log_failure(job.job_id, exc)
        return f"failed ({type(exc).__name__}); see the log"
    logger.info("job %s: %s", job.job_id, summary)
    return summary


def run_jobs_once(context: JobContext, jobs: list[Job] | None = None) -> dict[str, str]:
    """Run every registered job once, in order: {job id: summary}."""
    return {job.job_id: run_job(job, context) for job in jobs or JOBS}


def build_scheduler(
    engine: Engine, settings: Settings, catalogue: Catalogue, jobs: list[Job] | None = None
) -> BackgroundScheduler:
    """A background scheduler (not started) with every registered job.

    One instance of a job at a time; runs missed while the process was busy or asleep collapse
    into one, and are dropped when more than a minute late.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    # run_job logs one summary line per run; APScheduler's own two lines per run are noise
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        },
    )
    context = JobContext(engine, settings, catalogue)
    for job in jobs or JOBS:
        scheduler.add_job(
            run_job,
            trigger=job.trigger(),
            args=(job, context),
            id=job.job_id,
            name=job.description,
            replace_existing=True,
        )
    return scheduler


def scheduler_command(
    once: Annotated[
        bool, typer.Option("--once", help="Run every job once and exit (for cron and tests).")
    ] = False,
) -> None:
    """Run the background jobs (pull connectors, release builds asked for on the page,
    scheduled exports, reminders, retention) in
    the foreground until stopped. Run one scheduler process per hub, never one per web worker;
    a second one started by mistake does no harm (each run is claimed once in the database)."""
    from hub.cli import _ensure_schema, _settings
    from hub.db import get_engine

    settings = _settings()
    engine = get_engine(settings)
    catalogue = _ensure_schema(engine, settings)
    if once:
        for job_id, summary in run_jobs_once(JobContext(engine, settings, catalogue)).items():
            typer.echo(f"{job_id}: {summary}")
        return
    scheduler = build_scheduler(engine, settings, catalogue)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scheduler.start()
    typer.echo(f"scheduler running jobs: {', '.join(job.job_id for job in JOBS)}  (Ctrl+C to stop)")
    while not stop.wait(1.0):
        pass
    scheduler.shutdown(wait=True)
    typer.echo("scheduler stopped")
