"""Completeness and timeliness of reporting, per member organisation and period.

For a period P, an organisation's *expected* obligations are those of P's kind active for P.
One is *received* when the organisation's current submissions hold at least one observation
of that metric for P (any breakdown), and *on time* when the first version that held it
arrived by the due date (a later restatement does not make figures late, nor early ones
late). Everything is computed for all members in a few set-based queries (DHIS2's
"reporting rate" and "reporting rate on time").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.calendar import NO_CALENDAR_TYPES
from hub.errors import HubError
from hub.models import (
    MetricDefinition,
    Observation,
    Organisation,
    Period,
    ReportingObligation,
    ReportingStatus,
    Submission,
)
from hub.periods import PeriodRef, parse_period
from hub.store import current_submissions, ensure_periods

STATES = ("complete", "partial", "missing", "not-due")


@dataclass(frozen=True)
class MissingMetric:
    code: str
    name: str
    due_date: date


@dataclass
class StatusRow:
    """One member organisation's reporting for one period."""

    organisation_id: int
    code: str
    stakeholder_type: str
    contact: str | None
    expected: int = 0
    received: int = 0
    on_time: int = 0
    due_date: date = date.max  # the earliest due date of its expected obligations
    missing_metrics: list[MissingMetric] = field(default_factory=list)
    today: date = date.min

    @property
    def late(self) -> int:
        return self.received - self.on_time

    @property
    def missing(self) -> int:
        return self.expected - self.received

    @property
    def overdue(self) -> int:
        """Missing obligations whose due date has passed."""
        return sum(1 for m in self.missing_metrics if self.today > m.due_date)

    @property
    def state(self) -> str:
        if self.received == self.expected:
            return "complete"
        if self.overdue == 0:
            return "not-due"
        return "partial" if self.received else "missing"

    def to_dict(self) -> dict[str, Any]:
        return {
            "organisation": self.code,
            "stakeholder_type": self.stakeholder_type,
            "expected": self.expected,
            "received": self.received,
            "on_time": self.on_time,
            "late": self.late,
            "missing": self.missing,
            "overdue": self.overdue,
            "due_date": self.due_date.isoformat(),
            "state": self.state,
            "missing_metrics": [m.code for m in self.missing_metrics],
        }


@dataclass(frozen=True)
class StatusSummary:
    period: str
    organisations: int
    expected: int
    received: int
    on_time: int
    states: dict[str, int]

    @property
    def completeness(self) -> float | None:
        """Received over expected (DHIS2's reporting rate)."""
        return self.received / self.expected if self.expected else None

    @property
    def timeliness(self) -> float | None:
        """On time over expected (DHIS2's reporting rate on time)."""
        return self.on_time / self.expected if self.expected else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "completeness": self.completeness, "timeliness": self.timeliness}

    def line(self) -> str:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.1f}%"

        states = ", ".join(f"{self.states.get(s, 0)} {s}" for s in STATES)
        return (
            f"{self.period}: {self.organisations} organisations expected to report ({states}); "
            f"completeness {pct(self.completeness)} ({self.received}/{self.expected}), "
            f"timeliness {pct(self.timeliness)} ({self.on_time}/{self.expected} on time)"
        )


def period_for_status(code: str, today: date) -> PeriodRef:
    """Parse a period and refuse one that has not started: nothing can be expected of it."""
    period = parse_period(code)
    if period.start > today:
        raise HubError(f"period {period.code} has not started yet")
    return period


def _day_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, UTC)


def compute_status(
    session: Session,
    period: PeriodRef,
    now: datetime | None = None,
    *,
    organisation_id: int | None = None,
) -> list[StatusRow]:
    """Status of every member with an obligation for ``period`` (or of one), in three queries."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    last_day = period.end - timedelta(days=1)
    # 1. the obligations that apply: members only, of the period's kind, active for it
    obligations = (
        sa_select(
            col(ReportingObligation.organisation_id),
            col(ReportingObligation.metric_id),
            col(ReportingObligation.due_days),
            col(Organisation.code),
            col(Organisation.stakeholder_type),
            col(Organisation.reporting_contact),
            col(MetricDefinition.code),
            col(MetricDefinition.name),
        )
        .join(Organisation, col(Organisation.id) == ReportingObligation.organisation_id)
        .join(MetricDefinition, col(MetricDefinition.id) == ReportingObligation.metric_id)
        .where(
            col(Organisation.status) == "member",
            col(Organisation.stakeholder_type).not_in(NO_CALENDAR_TYPES),
            col(ReportingObligation.period_kind) == period.kind,
            col(ReportingObligation.active_from) <= period.start,
            or_(
                col(ReportingObligation.active_until).is_(None),
                col(ReportingObligation.active_until) >= last_day,
            ),
        )
    )
    if organisation_id is not None:
        obligations = obligations.where(col(ReportingObligation.organisation_id) == organisation_id)
    wanted = session.execute(obligations).all()
    if not wanted:
        return []
    rows: dict[int, StatusRow] = {}
    for org_id, _, _, code, kind, contact, _, _ in wanted:
        rows.setdefault(org_id, StatusRow(org_id, code, kind, contact, today=today))

    # 2. per (organisation, metric): when the figures first arrived, and whether they still stand
    period_id = session.exec(select(Period.id).where(col(Period.code) == period.code)).first()
    arrivals: dict[tuple[int, int], tuple[datetime, bool]] = {}
    if period_id is not None:
        current = current_submissions().subquery()
        query = (
            select(
                Submission.organisation_id,
                Observation.metric_id,
                func.min(Submission.received_at),
                func.max(case((current.c.id.is_not(None), 1), else_=0)),
            )
            .join(Submission, col(Submission.id) == Observation.submission_id)
            .outerjoin(current, current.c.id == Submission.id)
            .where(
                Observation.period_id == period_id,
                col(Observation.metric_id).in_({metric_id for _, metric_id, *_ in wanted}),
                col(Submission.organisation_id).in_(list(rows)),
            )
            .group_by(col(Submission.organisation_id), col(Observation.metric_id))
        )
        for org_id, metric_id, first, standing in session.exec(query):
            arrivals[(org_id, metric_id)] = (first, bool(standing))

    for org_id, metric_id, due_days, _, _, _, metric_code, metric_name in wanted:
        row = rows[org_id]
        due = period.end + timedelta(days=due_days)
        row.expected += 1
        row.due_date = min(row.due_date, due)
        arrival = arrivals.get((org_id, metric_id))
        if arrival is not None and arrival[1]:
            first = arrival[0]
            row.received += 1
            row.on_time += first < _day_after(due)
        else:
            row.missing_metrics.append(MissingMetric(metric_code, metric_name, due))
    for row in rows.values():
        row.missing_metrics.sort(key=lambda m: m.code)
    return sorted(rows.values(), key=lambda r: r.code)


def summarise(period: PeriodRef, rows: list[StatusRow]) -> StatusSummary:
    states: dict[str, int] = defaultdict(int)
    for row in rows:
        states[row.state] += 1
    return StatusSummary(
        period=period.code,
        organisations=len(rows),
        expected=sum(r.expected for r in rows),
        received=sum(r.received for r in rows),
        on_time=sum(r.on_time for r in rows),
        states=dict(states),
    )


def period_ids(session: Session, periods: Iterable[PeriodRef]) -> dict[str, int]:
    """Period code -> id, creating missing periods in a savepoint: a concurrent run that
    created the same period first makes this one read it rather than fail."""
    wanted = list(periods)
    try:
        with session.begin_nested():
            return ensure_periods(session, wanted)
    except IntegrityError:
        session.info.pop("hub.store.ids", None)  # the cached ids of the rolled-back rows are void
        return ensure_periods(session, wanted)


def refresh_status(session: Session, period: PeriodRef, now: datetime | None = None) -> list[StatusRow]:
    """Compute every member's status for ``period`` and store it (one row each, upserted).

    Rows of organisations no longer expected to report for the period are removed.
    """
    now = now or datetime.now(UTC)
    rows = compute_status(session, period, now)
    period_id = period_ids(session, [period])[period.code]
    keep = [r.organisation_id for r in rows]
    stale = select(ReportingStatus).where(
        ReportingStatus.period_id == period_id, col(ReportingStatus.organisation_id).not_in(keep)
    )
    for old in session.exec(stale):
        session.delete(old)
    if rows:
        records = [
            {
                "organisation_id": r.organisation_id,
                "period_id": period_id,
                "due_date": r.due_date,
                "expected": r.expected,
                "received": r.received,
                "on_time": r.on_time,
                "late": r.late,
                "computed_at": now,
            }
            for r in rows
        ]
        dialect = session.connection().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(ReportingStatus).values(records)
        # concurrent refreshes of the same period both succeed: the last one wins
        statement = statement.on_conflict_do_update(
            index_elements=["organisation_id", "period_id"],
            set_={
                name: statement.excluded[name]
                for name in ("due_date", "expected", "received", "on_time", "late", "computed_at")
            },
        )
        session.execute(statement)
    session.flush()
    return rows


def status_rows(
    session: Session,
    period: PeriodRef,
    now: datetime | None = None,
    *,
    organisation: str | None = None,
    refresh: bool = True,
) -> tuple[list[StatusRow], StatusSummary]:
    """Per-organisation rows and the alliance summary for ``period`` (refreshing the stored status)."""
    rows = refresh_status(session, period, now) if refresh else compute_status(session, period, now)
    if organisation is not None:
        rows = [r for r in rows if r.code == organisation]
    return rows, summarise(period, rows)


def stored_status(session: Session, period: PeriodRef) -> dict[str, ReportingStatus]:
    """Organisation code -> the status row last stored for ``period``."""
    query = (
        select(Organisation.code, ReportingStatus)
        .join(ReportingStatus, col(ReportingStatus.organisation_id) == Organisation.id)
        .join(Period, and_(col(Period.id) == ReportingStatus.period_id, col(Period.code) == period.code))
    )
    return dict(session.exec(query).all())
