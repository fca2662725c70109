"""Reminders: queued once per organisation, period and stage; sent through a real SMTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub.calendar import Obligation, set_contact, set_obligation
from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.models import AuditEvent, Organisation, Reminder
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.reminders import queue_reminders, run_reminders, send_queued
from hub.settings import Settings
from hub.store import store_submission
from hub.validation import ObservationIn

ITEMS, NOTICES = "co_items_actioned", "co_notices_received"
FIGURE = 987654
PASSWORD = "s3cret-smtp-pass"
# 2025-Q1 is due on 2025-05-01
DUE_SOON = datetime(2025, 4, 26, 9, tzinfo=UTC)
OVERDUE = datetime(2025, 5, 10, 9, tzinfo=UTC)
FINAL = datetime(2025, 6, 5, 9, tzinfo=UTC)
TOO_OLD = datetime(2025, 7, 15, 9, tzinfo=UTC)


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[Message]:
        return [message_from_bytes(e.content) for e in self.envelopes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def _smtp(settings: Settings, port: int, **extra: Any) -> Settings:
    values = {
        **settings.model_dump(),
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_sender": "hub@alliance.example",
        **extra,
    }
    return Settings(**values)


def _member(
    session: Session, catalogue: Catalogue, code: str, contact: str | None = "reporting@{code}.example"
) -> Organisation:
    org = add_organisation(
        session, OrganisationIn(code=code, name=code.title(), stakeholder_type="company", country="DE")
    )
    for metric in (ITEMS, NOTICES):
        set_obligation(session, catalogue, org, Obligation(metric, "quarter", 30, date(2024, 1, 1)))
    if contact:
        set_contact(session, org, contact.format(code=code))
    return org


def _report(
    session: Session, catalogue: Catalogue, org: Organisation, metrics: list[str], reason: str | None = None
) -> None:
    q1 = parse_period("2025-Q1")
    store_submission(
        session,
        catalogue,
        org,
        [ObservationIn(m, q1, FIGURE) for m in metrics],
        channel="cli",
        scope="2025-Q1",
        actor="test",
        supersede_reason=reason,
        received_at=datetime(2025, 4, 20, tzinfo=UTC),
        today=datetime(2025, 12, 31, tzinfo=UTC),
    )


@pytest.fixture
def members(session: Session, catalogue: Catalogue) -> Session:
    """A partial reporter, a silent one, a complete one, and a silent one without a mailbox."""
    partial = _member(session, catalogue, "partial-co")
    _report(session, catalogue, partial, [ITEMS])
    _member(session, catalogue, "silent-co")
    complete = _member(session, catalogue, "complete-co")
    _report(session, catalogue, complete, [ITEMS, NOTICES])
    _member(session, catalogue, "no-mailbox-co", contact=None)
    session.commit()
    return session


def _reminders(engine: Engine) -> list[tuple[str, str, str, int]]:
    with session_scope(engine) as session:
        rows = session.exec(
            select(Organisation.code, Reminder).join(
                Organisation, Organisation.id == Reminder.organisation_id
            )  # type: ignore[arg-type]
        ).all()
        return sorted((code, r.stage, r.state, r.attempts) for code, r in rows)


@pytest.mark.parametrize(
    ("now", "stage"), [(DUE_SOON, "due_soon"), (OVERDUE, "overdue"), (FINAL, "final"), (TOO_OLD, None)]
)
def test_stages_follow_the_due_date_and_skip_complete_and_unreachable(
    members: Session, loaded_engine: Engine, now: datetime, stage: str | None
) -> None:
    with session_scope(loaded_engine) as session:
        queued = queue_reminders(session, now)
    expected = [] if stage is None else [("partial-co", stage), ("silent-co", stage)]
    assert sorted((c.organisation, c.stage) for c in queued) == expected
    assert {c.period.code for c in queued} <= {"2025-Q1"}
    assert [(o, s) for o, s, _, _ in _reminders(loaded_engine)] == expected


def test_a_reminder_is_sent_once_with_what_is_missing_and_no_figure(
    members: Session,
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    smtp = _smtp(settings, port)
    first = run_reminders(loaded_engine, smtp, catalogue, OVERDUE)
    assert (first.queued, first.sent, first.failed) == (2, 2, 0)
    by_rcpt = {tuple(e.rcpt_tos): message_from_bytes(e.content) for e in handler.envelopes}
    assert set(by_rcpt) == {("reporting@partial-co.example",), ("reporting@silent-co.example",)}
    message = by_rcpt[("reporting@partial-co.example",)]
    assert message["To"] == "reporting@partial-co.example" and message["From"] == "hub@alliance.example"
    assert "2025-Q1" in message["Subject"] and "overdue" in message["Subject"]
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert message.get_content_type() == "text/plain"
    assert f"{NOTICES}: {catalogue.metrics[NOTICES].name}" in body
    assert ITEMS + ":" not in body  # received: not listed as missing
    assert "2025-05-01" in body and "upload" in body and "API" in body
    assert str(FIGURE) not in body and "987" not in body
    assert [s for _, _, s, _ in _reminders(loaded_engine)] == ["sent", "sent"]

    second = run_reminders(loaded_engine, smtp, catalogue, OVERDUE)  # an hour later: nothing new
    assert (second.queued, second.sent) == (0, 0)
    assert len(handler.envelopes) == 2
    with session_scope(loaded_engine) as session:
        audit = " ".join(str(e.details) for e in session.exec(select(AuditEvent)))
    assert "example" not in audit and str(FIGURE) not in audit


def test_two_concurrent_runs_queue_one_reminder_each(members: Session, loaded_engine: Engine) -> None:
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def queue() -> None:
        try:
            barrier.wait()
            with session_scope(loaded_engine) as session:
                results.append(len(queue_reminders(session, OVERDUE)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=queue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(results) == 2  # partial-co and silent-co, once each, whichever run won
    assert len(_reminders(loaded_engine)) == 2


def test_smtp_down_marks_failed_and_the_next_run_retries(
    members: Session,
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    down = _smtp(settings, _free_port(), smtp_username="hub-user", smtp_password=PASSWORD)
    result = run_reminders(loaded_engine, down, catalogue, OVERDUE)
    assert (result.queued, result.sent, result.failed) == (2, 0, 2)
    with session_scope(loaded_engine) as session:
        failed = session.exec(select(Reminder)).all()
        assert {(r.state, r.attempts) for r in failed} == {("failed", 1)}
        assert all(r.last_error and "Connection" in r.last_error for r in failed)
        assert not any(PASSWORD in (r.last_error or "") for r in failed)
    retry = run_reminders(loaded_engine, _smtp(settings, port), catalogue, OVERDUE)
    assert (retry.queued, retry.sent, retry.failed) == (0, 2, 0)
    assert {(s, a) for _, _, s, a in _reminders(loaded_engine)} == {("sent", 2)}
    assert len(handler.envelopes) == 2


def test_without_an_smtp_host_reminders_stay_queued(
    members: Session, loaded_engine: Engine, settings: Settings, catalogue: Catalogue
) -> None:
    assert settings.smtp_host == ""
    result = run_reminders(loaded_engine, settings, catalogue, OVERDUE)
    assert (result.queued, result.sent, result.pending) == (2, 0, 2)
    assert {(s, a) for _, _, s, a in _reminders(loaded_engine)} == {("queued", 0)}


def test_a_reminder_no_longer_needed_is_dropped_not_sent(
    members: Session,
    loaded_engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    with session_scope(loaded_engine) as session:
        assert len(queue_reminders(session, OVERDUE)) == 2
    partial = members.exec(select(Organisation).where(Organisation.code == "partial-co")).one()
    _report(members, catalogue, partial, [ITEMS, NOTICES], reason="completed")
    members.commit()
    with session_scope(loaded_engine) as session:
        dry = send_queued(session, _smtp(settings, port), OVERDUE, dry_run=True)
    assert (len(dry.sent), len(dry.cancelled)) == (1, 1) and handler.envelopes == []
    with session_scope(loaded_engine) as session:
        result = send_queued(session, _smtp(settings, port), OVERDUE)
    assert result.cancelled == ["partial-co 2025-Q1 overdue"] and len(result.sent) == 1
    assert [e.rcpt_tos for e in handler.envelopes] == [["reporting@silent-co.example"]]
    assert _reminders(loaded_engine) == [("silent-co", "overdue", "sent", 1)]
    with session_scope(loaded_engine) as session:
        assert session.exec(select(func.count()).select_from(Reminder)).one() == 1
