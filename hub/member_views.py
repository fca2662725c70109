"""What the signed-in pages show: an organisation's own submissions and reporting duties, and
the secretariat's completeness matrix and approval queue. Plain functions of a session.

Rule 3: every organisation view takes the organisation from the signed-in account (the
caller passes ``Account.organisation_code``), never from a request value; the secretariat
views refuse any account that is not secretariat or admin. Nothing here returns a submitted
value or a contact address: these pages show who reported what and when, not the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlmodel import Session

from hub.approval import SubmissionRow, approve, list_submissions, live_pending, reject
from hub.auth import Account
from hub.calendar import Obligation, calendar_of
from hub.coordination import compute_status
from hub.errors import HubError
from hub.models import User
from hub.organisations import get_by_code
from hub.periods import PeriodRef, parse_period

RECENT_SUBMISSIONS = 100


class NotAllowed(HubError):
    """The signed-in account may not see this."""


@dataclass(frozen=True)
class Duty:
    """One period an organisation reports for: what is expected, what arrived, what is due."""

    period: str
    state: str  # complete | partial | missing | not-due
    expected: int
    received: int
    on_time: int
    due_date: date | None
    missing: list[tuple[str, str, date]]  # metric code, name, due date


@dataclass(frozen=True)
class MatrixRow:
    organisation: str
    stakeholder_type: str
    states: dict[str, str]  # period -> state


def recent_quarters(today: date, count: int = 4) -> list[PeriodRef]:
    """The ``count`` latest quarters that have started, oldest first."""
    year, quarter = today.year, (today.month - 1) // 3 + 1
    found = []
    for _ in range(count):
        found.append(parse_period(f"{year}-Q{quarter}"))
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return list(reversed(found))


def own_organisation(account: Account) -> str:
    if account.organisation_code is None:
        raise NotAllowed("this account belongs to no organisation")
    return account.organisation_code


def require_secretariat(account: Account) -> None:
    if not account.is_secretariat:
        raise NotAllowed("only the secretariat sees this")


def own_submissions(
    session: Session, account: Account, limit: int = RECENT_SUBMISSIONS
) -> list[SubmissionRow]:
    """The account's organisation's submissions, newest first."""
    rows = list_submissions(session, organisation=own_organisation(account))
    return sorted(rows, key=lambda r: r.id, reverse=True)[:limit]


def own_calendar(session: Session, account: Account) -> list[Obligation]:
    return calendar_of(session, get_by_code(session, own_organisation(account)))


def own_duties(session: Session, account: Account, today: date | None = None) -> list[Duty]:
    """The organisation's reporting in the latest quarters (read only: nothing is refreshed)."""
    code = own_organisation(account)
    now = datetime.now(UTC) if today is None else datetime.combine(today, datetime.min.time(), UTC)
    duties = []
    for period in recent_quarters(now.date()):
        for row in compute_status(session, period, now):
            if row.code != code:
                continue
            duties.append(
                Duty(
                    period=period.code,
                    state=row.state,
                    expected=row.expected,
                    received=row.received,
                    on_time=row.on_time,
                    due_date=None if row.due_date == date.max else row.due_date,
                    missing=[(m.code, m.name, m.due_date) for m in row.missing_metrics],
                )
            )
    return duties


def completeness_matrix(
    session: Session, account: Account, today: date | None = None
) -> tuple[list[str], list[MatrixRow]]:
    """The secretariat's organisation x period matrix of reporting states (latest quarters)."""
    require_secretariat(account)
    now = datetime.now(UTC) if today is None else datetime.combine(today, datetime.min.time(), UTC)
    periods = recent_quarters(now.date())
    rows: dict[str, MatrixRow] = {}
    for period in periods:
        for status in compute_status(session, period, now):
            row = rows.setdefault(status.code, MatrixRow(status.code, status.stakeholder_type, {}))
            row.states[period.code] = status.state
    return [p.code for p in periods], sorted(
        rows.values(), key=lambda r: (r.stakeholder_type, r.organisation)
    )


def approval_queue(session: Session, account: Account, limit: int = 200) -> list[SubmissionRow]:
    """Submissions awaiting the secretariat's decision, oldest first: the newest live version
    of each scope only (an older one cannot be approved once a newer one exists)."""
    require_secretariat(account)
    live = set(live_pending(session)[:limit])
    return [row for row in list_submissions(session, status="validated") if row.id in live]


def queue_length(session: Session, account: Account) -> int:
    """How many submissions await a decision (newest live versions)."""
    require_secretariat(account)
    return len(live_pending(session))


DECISIONS = ("approve", "reject")


def decide(session: Session, account: Account, submission_id: int, action: str, reason: str | None) -> str:
    """The secretariat approves or rejects one submission from its page; audited by
    hub.approval with the account as reviewer and channel ``web``. Returns what was done."""
    require_secretariat(account)
    if action not in DECISIONS:
        raise NotAllowed(f"unknown decision {action!r}")
    user = session.get(User, account.user_id)
    if user is None:
        raise NotAllowed("the account no longer exists")
    if action == "approve":
        approve(session, user, [submission_id], channel="web")
        return f"Submission {submission_id} approved."
    reject(session, user, [submission_id], reason, channel="web")
    return f"Submission {submission_id} rejected."
