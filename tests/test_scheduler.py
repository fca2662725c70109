"""The scheduler: its registry, a real BackgroundScheduler firing, and ``hub scheduler --once``."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from hubcli import HubCommands
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from test_connectors import HUB, JSON_FEED, ORG, FeedServer, Reply, org_session  # noqa: F401

from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.models import Connector, ConnectorRun
from hub.scheduler import JOBS, Job, JobContext, build_scheduler, run_job, run_jobs_once
from hub.settings import Settings
from ingest.connectors import add_connector


def test_registry_holds_the_connectors_job_every_minute(
    loaded_engine: Engine, settings: Settings, catalogue: Catalogue
) -> None:
    assert [job.job_id for job in JOBS] == ["connectors", "builds", "outputs", "reminders", "retention"]
    scheduler = build_scheduler(loaded_engine, settings, catalogue)
    scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
    try:
        job = scheduler.get_job("connectors")
        assert job is not None
        assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == timedelta(minutes=1)
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 60)
    finally:
        scheduler.shutdown(wait=False)


def test_a_failing_job_is_logged_without_its_message_and_the_next_job_runs(
    loaded_engine: Engine, settings: Settings, catalogue: Catalogue, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(_context: JobContext) -> str:
        value = "jane.doe" + "@example.org"  # built at run time: the traceback quotes this line
        raise ValueError(f"cell held {value}")

    jobs = [
        Job("explodes", explode, lambda: IntervalTrigger(minutes=1), "fails"),
        Job("works", lambda _context: "fine", lambda: IntervalTrigger(minutes=1), "works"),
    ]
    with caplog.at_level(logging.INFO, logger="hub.scheduler"):
        summaries = run_jobs_once(JobContext(loaded_engine, settings, catalogue), jobs)
    assert summaries == {"explodes": "failed (ValueError); see the log", "works": "fine"}
    assert "ValueError" in caplog.text and "jane.doe" not in caplog.text


def test_the_background_scheduler_fires_its_jobs(
    loaded_engine: Engine, settings: Settings, catalogue: Catalogue
) -> None:
    fired = threading.Event()

    def mark(context: JobContext) -> str:
        assert context.engine is loaded_engine  # the process's one engine
        fired.set()
        return "marked"

    job = Job("mark", mark, lambda: IntervalTrigger(seconds=0.2, timezone=UTC), "test job")
    scheduler = build_scheduler(loaded_engine, settings, catalogue, [job])
    scheduler.start()
    try:
        assert fired.wait(10), "the scheduler never ran its job"
    finally:
        scheduler.shutdown(wait=True)


def test_connectors_job_runs_due_connectors_and_sets_next_run(
    org_session: Session,
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    tmp_path: Path,
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    connector = add_connector(org_session, ORG, "drop", settings=settings, folder=drop, interval_minutes=10)
    org_session.commit()
    before = datetime.now(UTC)
    summary = run_job(JOBS[0], JobContext(loaded_engine, settings, catalogue))
    assert summary == "1 connector(s) ran: 1 empty"
    with session_scope(loaded_engine) as session:
        stored = session.get(Connector, connector.id)
        assert stored is not None and stored.next_run_at is not None and stored.last_result == "empty"
        assert (
            before + timedelta(minutes=10) <= stored.next_run_at <= datetime.now(UTC) + timedelta(minutes=10)
        )
    # not due any more
    assert run_job(JOBS[0], JobContext(loaded_engine, settings, catalogue)) == "0 connector(s) ran"


@pytest.mark.slow
def test_hub_scheduler_once(cli_env: dict[str, str], loaded_engine: Engine) -> None:
    feed = FeedServer()
    try:
        feed.replies = [Reply(body=JSON_FEED)]
        env = {**cli_env, "HUB_CONNECTOR_ALLOW_HTTP": "true"}
        run = HubCommands(env, "scheduler")  # one real process: the first `hub scheduler`
        assert run("org", "add", ORG, "--name", "Example", "--type", "company").returncode == 0
        added = run("connector", "add", ORG, "feed", "--url", feed.url())
        assert added.returncode == 0, added.stderr
        once = run("scheduler", "--once")
        assert once.returncode == 0, once.stderr
        lines = once.stdout.strip().splitlines()
        assert lines[0] == "connectors: 1 connector(s) ran: 1 accepted"
        assert [line.split(":")[0] for line in lines] == [job.job_id for job in JOBS]
        assert len(feed.seen) == 1
        with session_scope(loaded_engine) as session:
            connector = session.exec(select(Connector)).one()
            assert connector.next_run_at is not None and connector.next_run_at > datetime.now(UTC)
            assert [run.result for run in session.exec(select(ConnectorRun))] == ["accepted"]
        again = run("scheduler", "--once")
        assert again.stdout.strip().splitlines()[0] == "connectors: 0 connector(s) ran"
        assert len(feed.seen) == 1
    finally:
        feed.close()
