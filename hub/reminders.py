"""Reporting reminders by e-mail: queued per organisation, period and stage, sent through SMTP.

Stages, counted from the due date of the earliest missing metric:
``due_soon`` in the last DUE_SOON_DAYS days before it, ``overdue`` after it, ``final``
FINAL_AFTER_DAYS after it. A stage is queued only inside its window (``final`` for
FINAL_WINDOW_DAYS), so a hub started after a long pause does not mail every old period.
At most one reminder per (organisation, period, stage) exists: the database's unique
constraint decides, so two concurrent runs queue one. A reminder goes only to an
organisation's functional mailbox, says what is missing and by when, and never a figure.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub import audit
from hub.catalogue import Catalogue
from hub.coordination import StatusRow, compute_status, period_ids
from hub.db import session_scope
from hub.mail import Mailer, safe_error
from hub.models import Organisation, Period, Reminder, ReportingObligation
from hub.periods import PeriodRef, parse_period
from hub.settings import Settings

log = logging.getLogger(__name__)

DUE_SOON_DAYS = 7
FINAL_AFTER_DAYS = 30
FINAL_WINDOW_DAYS = 30
MAX_ATTEMPTS = 5  # a reminder failing this often is left failed (visible in `hub reminders list`)
ACTOR = "reminders"


@dataclass(frozen=True)
class Candidate:
    """A reminder that is due now: who, for which period, which stage, and what is missing."""

    organisation_id: int
    organisation: str
    period: PeriodRef
    stage: str
    due_date: date


def stage_for(row: StatusRow, today: date) -> str | None:
    """The stage an incomplete organisation is in today, or None (complete, or outside every window)."""
    if row.received >= row.expected or not row.missing_metrics:
        return None
    due = min(m.due_date for m in row.missing_metrics)
    days = (today - due).days
    if -DUE_SOON_DAYS <= days <= 0:
        return "due_soon"
    if 0 < days < FINAL_AFTER_DAYS:
        return "overdue"
    if FINAL_AFTER_DAYS <= days < FINAL_AFTER_DAYS + FINAL_WINDOW_DAYS:
        return "final"
    return None


def candidate_periods(session: Session, today: date) -> list[PeriodRef]:
    """Periods whose reminder windows include ``today``, for the period kinds in any calendar."""
    spans = session.exec(
        select(
            ReportingObligation.period_kind,
            func.min(ReportingObligation.due_days),
            func.max(ReportingObligation.due_days),
        ).group_by(col(ReportingObligation.period_kind))
    ).all()
    periods = []
    for kind, shortest, longest in spans:
        period = PeriodRef(today.year, "month", today.month).parent(kind)
        while True:
            first_due = period.end + timedelta(days=shortest)
            if (today - (period.end + timedelta(days=longest))).days >= FINAL_AFTER_DAYS + FINAL_WINDOW_DAYS:
                break
            if (first_due - today).days <= DUE_SOON_DAYS:
                periods.append(period)
            period = _previous(period)
    return sorted(periods)


def _previous(period: PeriodRef) -> PeriodRef:
    if period.number > 1:
        return PeriodRef(period.year, period.kind, period.number - 1)
    last = {"month": 12, "quarter": 4, "half_year": 2, "year": 1}[period.kind]
    return PeriodRef(period.year - 1, period.kind, last)


def due_reminders(session: Session, now: datetime | None = None) -> list[Candidate]:
    """Every reminder the calendar calls for now (organisations with a contact only)."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    found = []
    for period in candidate_periods(session, today):
        for row in compute_status(session, period, now):
            stage = stage_for(row, today)
            if stage is not None and row.contact:
                due = min(m.due_date for m in row.missing_metrics)
                found.append(Candidate(row.organisation_id, row.code, period, stage, due))
    return found


def queue_reminders(
    session: Session, now: datetime | None = None, *, dry_run: bool = False
) -> list[Candidate]:
    """Queue the reminders due now; returns those newly queued (or that would be, for a dry run)."""
    now = now or datetime.now(UTC)
    candidates = due_reminders(session, now)
    if not candidates:
        return []
    ids = period_ids(session, {c.period for c in candidates})
    existing = set(
        session.exec(
            select(Reminder.organisation_id, Reminder.period_id, Reminder.stage).where(
                col(Reminder.period_id).in_(set(ids.values()))
            )
        )
    )
    fresh = [c for c in candidates if (c.organisation_id, ids[c.period.code], c.stage) not in existing]
    if dry_run or not fresh:
        return fresh
    dialect = session.connection().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    queued = []
    for c in fresh:
        # ON CONFLICT: a concurrent run that queued the same reminder first wins, silently
        statement = (
            insert(Reminder)
            .values(
                organisation_id=c.organisation_id,
                period_id=ids[c.period.code],
                stage=c.stage,
                state="queued",
                queued_at=now,
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["organisation_id", "period_id", "stage"])
        )
        if session.execute(statement.returning(col(Reminder.id))).first() is not None:
            queued.append(c)
            audit.record(
                session,
                "reminder.queue",
                actor_label=ACTOR,
                organisation_id=c.organisation_id,
                object_type="reminder",
                details={"period": c.period.code, "stage": c.stage},
            )
    session.flush()
    return queued


_SUBJECTS = {
    "due_soon": "due on {due}",
    "overdue": "overdue since {due}",
    "final": "final reminder, overdue since {due}",
}


def compose(settings: Settings, stage: str, period: PeriodRef, row: StatusRow) -> EmailMessage:
    """The plain-text reminder: which period, which metrics are missing, the due date, how to submit."""
    assert row.contact is not None
    due = min(m.due_date for m in row.missing_metrics)
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = row.contact
    message["Subject"] = f"Reporting reminder: {period.code} figures of {row.code} {_SUBJECTS[stage]}".format(
        due=due.isoformat()
    )
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.smtp_sender.rpartition("@")[2] or None)
    lines = [
        f"To the reporting team of {row.code},",
        "",
        f"The alliance's reporting calendar expects figures from {row.code} for the period {period.code}.",
        f"They are due on {due.isoformat()} (the due date is the last day on which figures are on time).",
        "",
        f"Still missing ({row.missing} of {row.expected} expected metrics):",
        *(f"  - {m.code}: {m.name} (due {m.due_date.isoformat()})" for m in row.missing_metrics),
        "",
        "How to submit: upload a file on the hub's upload page, send it through the hub's API",
        "(/api/v1/, with your organisation's token), or let your pull connector deliver it.",
        "Templates per stakeholder type are offered by the hub; every submission gets a",
        "validation report, and a dry run checks a file without storing it.",
        "",
        "If you cannot report a metric, please tell the secretariat so the calendar can be changed.",
        "",
        "This message was sent automatically by the hub to your organisation's reporting mailbox.",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


@dataclass
class SendResult:
    sent: list[str] = field(default_factory=list)  # "org period stage"
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # complete by now: not needed any more
    pending: int = 0  # left queued (no SMTP host) or given up


def pending_reminders(session: Session) -> list[tuple[Reminder, Organisation, Period]]:
    """Reminders not sent yet that may still be tried, oldest first."""
    return list(
        session.exec(
            select(Reminder, Organisation, Period)
            .join(Organisation, col(Organisation.id) == Reminder.organisation_id)
            .join(Period, col(Period.id) == Reminder.period_id)
            .where(col(Reminder.state).in_(("queued", "failed")), Reminder.attempts < MAX_ATTEMPTS)
            .order_by(col(Reminder.id))
        ).all()
    )


def send_queued(
    session: Session, settings: Settings, now: datetime | None = None, *, dry_run: bool = False
) -> SendResult:
    """Send every queued (or earlier failed) reminder; commits after each one.

    A reminder is claimed (attempts + 1, committed) before it is sent, so two concurrent
    senders never send the same one, and a sent reminder is never sent again. With no SMTP
    host configured nothing is sent and everything stays queued.
    """
    now = now or datetime.now(UTC)
    result = SendResult()
    todo = pending_reminders(session)
    if not settings.smtp_host and not dry_run:
        result.pending = len(todo)
        if todo:
            log.info("%d reminder(s) queued; HUB_SMTP_HOST is not set, so none was sent", len(todo))
        return result
    mailer = Mailer(settings)
    try:
        for reminder, org, period_row in todo:
            label = f"{org.code} {period_row.code} {reminder.stage}"
            period = parse_period(period_row.code)
            rows = compute_status(session, period, now, organisation_id=org.id)
            row = rows[0] if rows else None
            if row is None or row.received >= row.expected or not org.reporting_contact:
                result.cancelled.append(label)
                if not dry_run:
                    _cancel(session, reminder, label)
                continue
            message = compose(settings, reminder.stage, period, row)
            if dry_run:
                result.sent.append(label)
                continue
            if not _claim(session, reminder):
                continue  # another sender took it
            try:
                mailer.send(message)
            except (smtplib.SMTPException, OSError) as exc:
                error = safe_error(exc, settings, org.reporting_contact)
                _finish(session, reminder, state="failed", error=error)
                result.failed.append(label)
                log.warning("reminder %s not sent: %s", label, error)
                continue
            _finish(session, reminder, state="sent", sent_at=now)
            result.sent.append(label)
            log.info("reminder %s sent", label)
    finally:
        mailer.close()
    return result


def _cancel(session: Session, reminder: Reminder, label: str) -> None:
    audit.record(
        session,
        "reminder.cancel",
        actor_label=ACTOR,
        organisation_id=reminder.organisation_id,
        object_type="reminder",
        object_id=reminder.id,
        details={"stage": reminder.stage, "reason": "complete or no contact"},
    )
    session.delete(reminder)
    session.commit()
    log.info("reminder %s no longer needed: dropped", label)


def _claim(session: Session, reminder: Reminder) -> bool:
    claimed = session.execute(
        update(Reminder)
        .where(
            col(Reminder.id) == reminder.id,
            col(Reminder.state) != "sent",
            col(Reminder.attempts) == reminder.attempts,
        )
        .values(attempts=reminder.attempts + 1)
        .returning(col(Reminder.id))
    ).first()
    session.commit()
    session.refresh(reminder)
    return claimed is not None


def _finish(
    session: Session,
    reminder: Reminder,
    *,
    state: str,
    error: str | None = None,
    sent_at: datetime | None = None,
) -> None:
    reminder.state = state
    reminder.last_error = error
    reminder.sent_at = sent_at
    session.add(reminder)
    audit.record(
        session,
        f"reminder.{state}",
        actor_label=ACTOR,
        organisation_id=reminder.organisation_id,
        object_type="reminder",
        object_id=reminder.id,
        outcome="ok" if state == "sent" else "error",
        details={"stage": reminder.stage, "attempts": reminder.attempts},
    )
    session.commit()


@dataclass(frozen=True)
class ReminderRun:
    """What one scheduled run did."""

    queued: int
    sent: int
    failed: int
    cancelled: int
    pending: int

    def summary(self) -> str:
        return (
            f"reminders: {self.queued} queued, {self.sent} sent, {self.failed} failed, "
            f"{self.cancelled} dropped (complete), {self.pending} waiting for an SMTP host"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "sent": self.sent,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "pending": self.pending,
        }


def run_reminders(
    engine: Engine, settings: Settings, catalogue: Catalogue, now: datetime | None = None
) -> ReminderRun:
    """Queue what is due, then send what is queued: the scheduler calls this hourly.

    ``catalogue`` is accepted for the scheduler's uniform signature; the calendar already
    names the metrics.
    """
    del catalogue
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        queued = queue_reminders(session, now)
    with session_scope(engine) as session:
        sent = send_queued(session, settings, now)
    return ReminderRun(len(queued), len(sent.sent), len(sent.failed), len(sent.cancelled), sent.pending)
