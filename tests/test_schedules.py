"""Scheduled outputs: valid jobs only, fire times worked out by hand, one run per job and fire
time even with two scheduler processes, catch-up after downtime, retries with backoff, one
alert e-mail after the last attempt, delivery to a folder and by e-mail (a real SMTP server)."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from hubcli import HUB
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from test_public_pages import releases  # noqa: F401 - a fixture
from test_publication import alliance  # noqa: F401 - a fixture
from test_reminders import Inbox, _smtp, inbox  # noqa: F401 - inbox is a fixture

from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.models import ScheduledJob, ScheduledRun
from hub.schedules import (
    Delivered,
    JobSpec,
    ScheduleError,
    claim_run,
    crontab_weekdays,
    latest_fire_time,
    load_job_specs,
    sync_configured_jobs,
    tick,
)
from hub.settings import Settings

MONDAY_0630_BRUSSELS = datetime(2026, 11, 23, 5, 30, tzinfo=UTC)  # CET is UTC+1 in November


# --- jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cron": "0 6 * *"}, "five fields"),
        ({"cron": "0 25 * * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"formats": ["csv", "pdf"]}, "unknown format pdf"),
        ({"email": ["secretariat@alliance.example"]}, "one of them"),
        ({"folder": None}, "one of them"),
        ({"name": "Weekly Export"}, "lower-case"),
        ({"max_attempts": 0}, "greater than or equal to 1"),
        ({"colour": "red"}, "Extra inputs"),
        ({"formats": []}, "produce export formats, reports, or both"),
        ({"reports": ["org:quiet-video"]}, "unknown report org:quiet-video"),
        ({"reports": ["country:de"]}, "unknown report country:de"),
    ],
)
def test_a_job_that_cannot_run_is_refused_with_its_reason(change: dict[str, Any], reason: str) -> None:
    good = {
        "name": "weekly",
        "cron": "0 6 * * 1",
        "timezone": "Europe/Brussels",
        "formats": ["csv"],
        "folder": "x",
    }
    JobSpec.model_validate(good)
    with pytest.raises(ValueError, match=reason):
        JobSpec.model_validate({**good, **change})


def test_the_configuration_file_reports_every_problem_with_its_place(tmp_path: Path) -> None:
    assert load_job_specs(tmp_path / "absent.yaml") == []
    path = tmp_path / "schedules.yaml"
    path.write_text(
        "jobs:\n"
        "  - {name: a, cron: '0 6 * * 1', formats: [csv], folder: out}\n"
        "  - {name: b, cron: 'every monday', formats: [csv], folder: out}\n"
        "  - {name: a, cron: '0 7 * * *', formats: [zip], email: [not-a-mailbox]}\n"
    )
    with pytest.raises(ScheduleError) as refused:
        load_job_specs(path)
    message = str(refused.value)
    assert "job 2: " in message and "five fields" in message
    assert "job 3: email" in message and "not-a-mailbox" not in message
    path.write_text("jobs: {name: a}\n")
    with pytest.raises(ScheduleError, match="expected a list under 'jobs'"):
        load_job_specs(path)
    shipped = load_job_specs(Path(__file__).resolve().parent.parent / "data" / "schedules.yaml")
    assert [s.name for s in shipped] == ["weekly-open-data"]


def test_fire_times_worked_out_by_hand() -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    # Monday 06:00 in Brussels is 05:00 UTC in November (CET) and 04:00 UTC in June (CEST)
    assert latest_fire_time("0 6 * * 1", "Europe/Brussels", MONDAY_0630_BRUSSELS, long_ago) == datetime(
        2026, 11, 23, 5, 0, tzinfo=UTC
    )
    june = datetime(2026, 6, 10, 12, tzinfo=UTC)  # a Wednesday
    assert latest_fire_time("0 6 * * 1", "Europe/Brussels", june, long_ago) == datetime(
        2026, 6, 8, 4, 0, tzinfo=UTC
    )
    # just before the fire time: last week's
    assert latest_fire_time(
        "0 6 * * 1", "Europe/Brussels", datetime(2026, 11, 23, 4, 59, tzinfo=UTC), long_ago
    ) == datetime(2026, 11, 16, 5, 0, tzinfo=UTC)
    assert latest_fire_time(
        "*/15 * * * *", "UTC", datetime(2026, 11, 23, 10, 7, 30, tzinfo=UTC), long_ago
    ) == (datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert latest_fire_time("0 0 1 1 *", "UTC", MONDAY_0630_BRUSSELS, long_ago) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    # a job defined after the last fire time has nothing to catch up
    defined = datetime(2026, 11, 23, 5, 10, tzinfo=UTC)
    assert latest_fire_time("0 6 * * 1", "Europe/Brussels", MONDAY_0630_BRUSSELS, defined) is None


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("5-0", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("mon,wed", "mon,wed"),
        ("sat-sun", "sun,sat"),
        ("*", "*"),
    ],
)
def test_crontab_weekdays_count_from_sunday(field: str, days: str) -> None:
    """APScheduler 3 counts weekdays from Monday = 0; a crontab from Sunday = 0."""
    assert crontab_weekdays(field) == days


@pytest.mark.parametrize("field", ["8", "3-1", "mon/0", "funday"])
def test_a_bad_weekday_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="weekday"):
        crontab_weekdays(field)


# --- runs -------------------------------------------------------------------------------------


class Producer:
    """Stands in for the export: writes one small file, or fails the first ``failures`` times."""

    def __init__(self, failures: int = 0, size: int = 100) -> None:
        self.failures, self.size, self.calls = failures, size, 0

    def __call__(
        self, engine: Engine, settings: Settings, catalogue: Catalogue, job: ScheduledJob, folder: Path
    ) -> Delivered:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(f"disk full (attempt {self.calls})")
        content = b"x" * self.size
        (folder / "release-1").mkdir(parents=True, exist_ok=True)
        (folder / "release-1" / "data.csv").write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        return Delivered(1, [{"name": "release-1/data.csv", "size": self.size, "sha256": digest}])


def _settings(settings: Settings, tmp_path: Path, jobs: str, **extra: Any) -> Settings:
    path = tmp_path / "schedules.yaml"
    path.write_text("jobs:\n" + jobs)
    return Settings(**{**settings.model_dump(), "schedules_file": path, **extra})


def _define(engine: Engine, settings: Settings, defined_at: datetime) -> ScheduledJob:
    """Sync the configured jobs and date them back, as if defined at ``defined_at``."""
    with session_scope(engine) as session:
        sync_configured_jobs(session, load_job_specs(settings.schedules_file))
        session.execute(update(ScheduledJob).values(created_at=defined_at))
    with Session(engine) as session:
        return session.exec(select(ScheduledJob)).one()


def _runs(engine: Engine) -> list[ScheduledRun]:
    with Session(engine) as session:
        return list(session.exec(select(ScheduledRun).order_by(ScheduledRun.id)))  # type: ignore[arg-type]


WEEKLY = "  - {name: weekly, cron: '0 6 * * 1', timezone: Europe/Brussels, formats: [csv], folder: out}\n"


def test_one_run_per_fire_time_then_the_next_week(
    loaded_engine: Engine, settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    configured = _settings(settings, tmp_path, WEEKLY)
    job = _define(loaded_engine, configured, datetime(2026, 11, 1, tzinfo=UTC))
    producer = Producer()
    first = tick(loaded_engine, configured, catalogue, MONDAY_0630_BRUSSELS, producer)
    assert first.started == ["weekly"] and producer.calls == 1
    again = tick(loaded_engine, configured, catalogue, MONDAY_0630_BRUSSELS + timedelta(minutes=1), producer)
    assert again.started == [] and producer.calls == 1
    (run,) = _runs(loaded_engine)
    assert (run.job_id, run.status, run.attempts, run.release_number) == (job.id, "succeeded", 1, 1)
    assert run.scheduled_for == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert run.files == [
        {"name": "release-1/data.csv", "size": 100, "sha256": hashlib.sha256(b"x" * 100).hexdigest()}
    ]
    assert (configured.var_dir / "out" / "release-1" / "data.csv").is_file()
    # a second process claiming the same fire time gets nothing
    assert claim_run(loaded_engine, job, run.scheduled_for, MONDAY_0630_BRUSSELS) is None
    next_week = tick(loaded_engine, configured, catalogue, MONDAY_0630_BRUSSELS + timedelta(days=7), producer)
    assert next_week.started == ["weekly"] and len(_runs(loaded_engine)) == 2


def test_a_run_missed_while_down_is_caught_up_once(
    loaded_engine: Engine, settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    daily = "  - {name: daily, cron: '15 2 * * *', formats: [csv], folder: out}\n"
    configured = _settings(settings, tmp_path, daily)
    _define(loaded_engine, configured, datetime(2026, 11, 1, tzinfo=UTC))
    producer = Producer()
    # the scheduler was down for three days: at start, the latest fire time is made, once
    tick(loaded_engine, configured, catalogue, datetime(2026, 11, 23, 9, 0, tzinfo=UTC), producer)
    (run,) = _runs(loaded_engine)
    assert run.scheduled_for == datetime(2026, 11, 23, 2, 15, tzinfo=UTC) and run.status == "succeeded"


def test_failures_are_retried_with_backoff_then_succeed(
    loaded_engine: Engine, settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    configured = _settings(settings, tmp_path, WEEKLY)
    _define(loaded_engine, configured, datetime(2026, 11, 1, tzinfo=UTC))
    producer = Producer(failures=2)
    at = MONDAY_0630_BRUSSELS
    tick(loaded_engine, configured, catalogue, at, producer)
    (run,) = _runs(loaded_engine)
    assert (run.status, run.attempts, run.next_attempt_at) == ("retrying", 1, at + timedelta(minutes=1))
    assert run.error == "OSError: disk full (attempt 1)"
    assert tick(loaded_engine, configured, catalogue, at + timedelta(seconds=30), producer).retried == []
    assert tick(loaded_engine, configured, catalogue, at + timedelta(minutes=1), producer).retried == [
        "weekly"
    ]
    (run,) = _runs(loaded_engine)
    assert (run.status, run.attempts, run.next_attempt_at) == ("retrying", 2, at + timedelta(minutes=5))
    tick(loaded_engine, configured, catalogue, at + timedelta(minutes=5), producer)
    (run,) = _runs(loaded_engine)
    assert (run.status, run.attempts, run.error, producer.calls) == ("succeeded", 3, None, 3)


def test_the_last_failure_sends_one_alert(
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    tmp_path: Path,
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    jobs = "  - {name: weekly, cron: '0 6 * * 1', timezone: Europe/Brussels, formats: [csv], folder: out, max_attempts: 2}\n"
    configured = _smtp(_settings(settings, tmp_path, jobs), port, alert_email="secretariat@alliance.example")
    _define(loaded_engine, configured, datetime(2026, 11, 1, tzinfo=UTC))
    producer = Producer(failures=10)
    at = MONDAY_0630_BRUSSELS
    tick(loaded_engine, configured, catalogue, at, producer)
    assert handler.messages() == []  # a retry is not an alert
    tick(loaded_engine, configured, catalogue, at + timedelta(minutes=1), producer)
    (run,) = _runs(loaded_engine)
    assert (run.status, run.attempts, run.alerted_at) == ("failed", 2, at + timedelta(minutes=1))
    tick(loaded_engine, configured, catalogue, at + timedelta(hours=3), producer)
    (alert,) = handler.messages()
    assert (
        alert["Subject"] == "[hub] scheduled job weekly failed"
        and alert["To"] == "secretariat@alliance.example"
    )
    assert "disk full (attempt 2)" in str(alert.get_payload())
    assert producer.calls == 2


def test_a_run_left_running_by_a_killed_process_is_retried(
    loaded_engine: Engine, settings: Settings, catalogue: Catalogue, tmp_path: Path
) -> None:
    configured = _settings(settings, tmp_path, WEEKLY)
    job = _define(loaded_engine, configured, datetime(2026, 11, 1, tzinfo=UTC))
    fire = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert claim_run(loaded_engine, job, fire, fire) is not None  # then the process died
    producer = Producer()
    tick(loaded_engine, configured, catalogue, fire + timedelta(minutes=30), producer)
    assert producer.calls == 0 and _runs(loaded_engine)[0].status == "running"  # may still be working
    tick(loaded_engine, configured, catalogue, fire + timedelta(hours=3), producer)
    (run,) = _runs(loaded_engine)
    assert run.status == "retrying" and run.error == "the process running it stopped"
    tick(loaded_engine, configured, catalogue, fire + timedelta(hours=3, minutes=2), producer)
    (run,) = _runs(loaded_engine)
    assert (run.status, run.attempts, producer.calls) == ("succeeded", 2, 1)


def test_delivery_by_email_attaches_the_files_with_their_checksums(
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    tmp_path: Path,
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    jobs = "  - {name: mailed, cron: '0 6 * * 1', formats: [csv], email: [secretariat@alliance.example]}\n"
    configured = _smtp(_settings(settings, tmp_path, jobs), port, schedule_email_max_bytes=1024)
    _define(loaded_engine, configured, datetime(2026, 11, 1, tzinfo=UTC))
    tick(loaded_engine, configured, catalogue, datetime(2026, 11, 23, 6, 30, tzinfo=UTC), Producer(size=100))
    (message,) = handler.messages()
    assert message["Subject"] == "[hub] mailed: release 1"
    parts: list[Message] = list(message.walk())
    attachments = [p for p in parts if p.get_filename() == "data.csv"]
    assert len(attachments) == 1 and attachments[0].get_payload(decode=True) == b"x" * 100
    assert hashlib.sha256(b"x" * 100).hexdigest() in str(parts[1].get_payload())
    # too large for e-mail: the run says so (and where to deliver instead), nothing is sent
    tick(loaded_engine, configured, catalogue, datetime(2026, 11, 30, 6, 30, tzinfo=UTC), Producer(size=5000))
    latest = _runs(loaded_engine)[-1]
    assert latest.status == "retrying" and "deliver these formats to a folder" in (latest.error or "")
    assert len(handler.messages()) == 1


def test_two_scheduler_processes_export_the_published_release_once(
    loaded_engine: Engine,
    settings: Settings,
    cli_env: dict[str, str],
    releases: dict[str, int],
    tmp_path: Path,
) -> None:
    """`hub scheduler --once` started twice at the same moment, a job due: one run, real files."""
    every_minute = "  - {name: every-minute, cron: '* * * * *', formats: [csv, sdmx], folder: out}\n"
    configured = _settings(settings, tmp_path, every_minute)
    _define(loaded_engine, configured, datetime(2026, 1, 1, tzinfo=UTC))
    env = {**cli_env, "HUB_SCHEDULES_FILE": str(configured.schedules_file)}
    processes = [
        subprocess.Popen(
            [HUB, "scheduler", "--once"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    lines = sorted(line for out, _ in outputs for line in out.splitlines() if line.startswith("outputs: "))
    assert len(lines) == 2 and "outputs: 1 run(s) started, 0 retried" in lines
    runs = _runs(loaded_engine)
    assert (
        len(runs) == 1 and runs[0].status == "succeeded" and runs[0].release_number == releases["published"]
    )
    folder = settings.var_dir / "out"
    assert runs[0].files is not None
    for entry in runs[0].files:
        path = folder / entry["name"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["name"]
    names = {entry["name"].split("/", 1)[1] for entry in runs[0].files}
    assert {"csv/indicators.csv", "sdmx/indicators.csv", "release.json"} <= names


def test_a_job_renders_its_reports_of_the_latest_release(
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    releases: dict[str, int],
    tmp_path: Path,
) -> None:
    from reports.scheduled import produce_outputs

    jobs = "  - {name: yearly-reports, cron: '0 6 * * 1', reports: [alliance, 'country:DE'], folder: out}\n"
    configured = _settings(settings, tmp_path, jobs)
    _define(loaded_engine, configured, datetime(2026, 11, 1, tzinfo=UTC))
    tick(loaded_engine, configured, catalogue, MONDAY_0630_BRUSSELS, produce_outputs)
    (run,) = _runs(loaded_engine)
    assert run.status == "succeeded", run.error
    number = releases["published"]
    assert run.files is not None
    names = [entry["name"] for entry in run.files]
    assert names == [
        f"release-{number}/reports/alliance-2025.pdf",
        f"release-{number}/reports/country-DE-2025.pdf",
    ]
    for entry in run.files:
        path = configured.var_dir / "out" / entry["name"]
        assert path.read_bytes().startswith(b"%PDF")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
