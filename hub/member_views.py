"""What the signed-in pages show: an organisation's own submissions and reporting duties, and
the secretariat's completeness matrix and approval queue. Plain functions of a session.

Rule 3: every organisation view takes the organisation from the signed-in account (the
caller passes ``Account.organisation_code``), never from a request value; the secretariat
views refuse any account that is not secretariat or admin. Nothing here returns a contact
address, and no figure of an organisation other than the account's own: the peer view
compares the organisation's own figures with the published, banded peer distribution only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.approval import SubmissionRow, approve, list_submissions, live_pending, reject
from hub.auth import Account, list_users
from hub.build_requests import BuildRequestRow, recent_requests, request_build
from hub.calendar import Obligation, calendar_of
from hub.catalogue import Catalogue
from hub.coordination import compute_status
from hub.discrepancies import DiscrepancyCache, approval_state, discrepant_pairs
from hub.errors import HubError
from hub.models import Release, Submission, User
from hub.organisations import get_by_code, list_organisations
from hub.own_figures import (
    FigureContext,
    PeerComparison,
    headline,
    own_figures,
    peer_positions,
    report_years,
    year_or_quarters,
)
from hub.periods import PeriodRef, parse_period
from hub.releases import REVISIONS, ReleaseInfo, list_releases, publish_release, read_release_table
from hub.tokens import list_tokens

RECENT_SUBMISSIONS = 100
PEER_ROWS = 60  # comparisons on the page; the company report holds them all


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


@dataclass(frozen=True)
class SubmissionReport:
    """A submission's stored validation report as its organisation reads it (never a value)."""

    id: int
    scope: str
    version: int
    status: str
    source_name: str
    file_format: str
    rows: int
    accepted: bool
    problems: list[dict[str, object]]


def own_submission_report(session: Session, account: Account, submission_id: int) -> SubmissionReport | None:
    """The validation report of one of the account's organisation's submissions; None when
    the id is not one of its own (another organisation's is never shown, nor its existence)."""
    organisation = get_by_code(session, own_organisation(account))
    submission = session.get(Submission, submission_id)
    if submission is None or submission.organisation_id != organisation.id:
        return None
    report = submission.validation_report or {}
    return SubmissionReport(
        id=submission_id,
        scope=submission.scope,
        version=submission.version,
        status=submission.status,
        source_name=str(report.get("source_name", "")),
        file_format=str(report.get("format", "")),
        rows=int(report.get("rows", 0) or 0),
        accepted=bool(report.get("accepted", True)),
        problems=list(report.get("problems", [])),
    )


@dataclass(frozen=True)
class PeerView:
    """The organisation's figures of one year against its peers, and its report years."""

    year: str | None
    release: int | None
    comparisons: list[PeerComparison]
    report_years: list[str]
    names: dict[str, str]  # metric code -> name


def own_peer_view(session: Session, account: Account, catalogue: Catalogue, data_dir: Path) -> PeerView:
    """The latest year in which the organisation's own figures have a published peer
    distribution (at least 5 peers), compared with it; and the years it can download a
    report for. The organisation comes from the account only."""
    code = own_organisation(account)
    context = FigureContext(session, catalogue, data_dir)
    own = own_figures(session, context, code)
    years = report_years(own)
    comparisons = headline(peer_positions(own, context.peers(session)))
    names = {code: spec.name for code, spec in catalogue.metrics.items()}
    # the newest year compared as a whole year, else the newest with quarters compared
    whole = [y for y in years if any(c.period == y for c in comparisons)]
    for year in whole[:1] or years:
        chosen = year_or_quarters([c for c in comparisons if c.period.startswith(year)])
        if chosen:
            return PeerView(year, context.release, chosen[:PEER_ROWS], years, names)
    return PeerView(None, context.release, [], years, names)


class PeerViewCache:
    """Each organisation's peer view (about half a second of indicator engine on its data),
    kept until an approval or a publication changes what it rests on; bounded, and each
    answer a copy. One per app (no module-level state)."""

    def __init__(self, catalogue: Catalogue, data_dir: Path, keep: int = 64) -> None:
        self.catalogue = catalogue
        self.data_dir = data_dir
        self._keep = keep
        self._lock = threading.Lock()
        self._views: OrderedDict[tuple[object, ...], PeerView] = OrderedDict()

    def get(self, session: Session, account: Account) -> PeerView:
        code = own_organisation(account)
        published = session.exec(
            select(func.max(Release.number)).where(col(Release.status) == "published")
        ).one()
        key = (code, approval_state(session), published)
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
        if view is None:
            view = own_peer_view(session, account, self.catalogue, self.data_dir)
            with self._lock:
                self._views[key] = view
                while len(self._views) > self._keep:
                    self._views.popitem(last=False)
        return replace(
            view,
            comparisons=list(view.comparisons),
            report_years=list(view.report_years),
            names=dict(view.names),
        )


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


# --- the secretariat's registers ---------------------------------------------------------------


def releases(session: Session, account: Account) -> list[ReleaseInfo]:
    """Every release, newest first, drafts and built ones included (the secretariat's view)."""
    require_secretariat(account)
    return sorted(list_releases(session), key=lambda r: r.number, reverse=True)


def release_preview(session: Session, account: Account, number: int, limit: int = 50) -> pd.DataFrame:
    """What a built release changes against the latest published one: its revisions log,
    largest absolute changes first (the log never holds a hidden value)."""
    require_secretariat(account)
    log = read_release_table(session, number, REVISIONS)
    if log.empty:
        return log
    return (
        log.sort_values("abs_change", ascending=False, na_position="last").head(limit).reset_index(drop=True)
    )


def discrepancies(session: Session, account: Account, cache: DiscrepancyCache) -> pd.DataFrame:
    """Reconciliation pairs out of tolerance (secretariat only: the rows name organisations)."""
    require_secretariat(account)
    return discrepant_pairs(cache.history(session))


def build_requests(session: Session, account: Account) -> list[BuildRequestRow]:
    require_secretariat(account)
    return recent_requests(session)


def ask_for_build(session: Session, account: Account, title: str, notes: str | None) -> str:
    """Queue a release build for the scheduler (secretariat only, audited)."""
    require_secretariat(account)
    request = request_build(session, account, title, notes)
    return f"Build request {request.id} queued: the scheduler builds it within a minute or two."


def publish(session: Session, account: Account, number: int) -> str:
    """Publish a built release from the secretariat's page (hub.releases checks and audits)."""
    require_secretariat(account)
    user = session.get(User, account.user_id)
    if user is None:
        raise NotAllowed("the account no longer exists")
    release = publish_release(session, number, user, channel="web")
    return f"Release {release.number} published."


def registers(session: Session, account: Account) -> dict[str, list[dict[str, str]]]:
    """Organisations, accounts and API tokens as the secretariat lists them: never a password
    hash, a token or its hash, nor a contact address."""
    require_secretariat(account)
    now = datetime.now(UTC)
    organisations = [
        {
            "code": o.code,
            "name": o.name,
            "type": o.stakeholder_type,
            "country": o.country or "",
            "status": o.status,
            "named": "yes" if o.consents_to_be_named else "no",
        }
        for o in list_organisations(session)
    ]
    users = [
        {
            "username": u.username,
            "name": u.display_name,
            "role": u.role,
            "organisation": u.organisation or "",
            "active": "yes" if u.is_active else "no",
            "last sign-in": u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "",
        }
        for u in list_users(session)
    ]
    tokens = [
        {
            "organisation": t.organisation,
            "label": t.label,
            "prefix": t.prefix,
            "state": t.state(now),
            "expires": t.expires_at.strftime("%Y-%m-%d"),
            "last used": t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "",
        }
        for t in list_tokens(session)
    ]
    return {"organisations": organisations, "users": users, "tokens": tokens}


# --- scheduled outputs ---------------------------------------------------------------------------


def scheduled_outputs(
    session: Session, account: Account, now: datetime | None = None, runs_shown: int = 30
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The scheduled jobs (when, what, where, their next fire time) and their latest runs
    (status, attempts, duration, files and their total size, the error if any). A job that
    delivers by e-mail shows how many mailboxes, not their addresses."""
    from hub.schedules import list_jobs, recent_runs, trigger

    require_secretariat(account)
    moment = now or datetime.now(UTC)
    jobs = []
    for job in list_jobs(session):
        upcoming = trigger(job.cron, job.timezone).get_next_fire_time(None, moment) if job.enabled else None
        mailboxes = len([m for m in job.destination.split(",") if m.strip()])
        jobs.append(
            {
                "name": job.name,
                "schedule": f"{job.cron} ({job.timezone})",
                "produces": ", ".join([*job.formats, *(f"{r} report" for r in job.reports)]),
                "delivery": f"folder {job.destination}"
                if job.delivery == "folder"
                else f"e-mail ({mailboxes} mailbox(es))",
                "defined by": "configuration" if job.source == "config" else "secretariat",
                "enabled": "yes" if job.enabled else "no",
                "next run (UTC)": upcoming.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if upcoming else "",
            }
        )
    runs = []
    for run, job in recent_runs(session, limit=runs_shown):
        files = run.files or []
        runs.append(
            {
                "job": job.name,
                "due (UTC)": run.scheduled_for.strftime("%Y-%m-%d %H:%M"),
                "status": run.status,
                "attempts": f"{run.attempts} of {job.max_attempts}",
                "duration": f"{run.duration_seconds:,.1f} s" if run.duration_seconds is not None else "",
                "release": str(run.release_number or ""),
                "files": f"{len(files)} ({sum(int(f['size']) for f in files) / 1e6:,.1f} MB)"
                if files
                else "",
                "error": run.error or "",
            }
        )
    return jobs, runs


def define_schedule(session: Session, account: Account, fields: dict[str, str | list[str]]) -> str:
    """A job from the secretariat's form. Folders are relative to the hub's own folder (no
    absolute path, no '..'): the web page cannot make the hub write anywhere else."""
    from pydantic import ValidationError

    from hub.schedules import JobSpec, define_job

    require_secretariat(account)
    user = session.get(User, account.user_id)
    if user is None:
        raise NotAllowed("the account no longer exists")
    folder = str(fields.get("folder") or "").strip() or None
    mailboxes = [m.strip() for m in str(fields.get("email") or "").split(",") if m.strip()]
    if folder is not None and (
        folder.startswith(("/", "\\", "~")) or ".." in folder.replace("\\", "/").split("/")
    ):
        raise HubError("a folder is relative to the hub's own folder, without '..'")
    formats = fields.get("formats") or []
    reports = fields.get("reports") or []
    try:
        spec = JobSpec(
            name=str(fields.get("name") or "").strip(),
            cron=str(fields.get("cron") or "").strip(),
            timezone=str(fields.get("timezone") or "UTC").strip(),
            formats=tuple(formats if isinstance(formats, list) else [formats]),
            reports=tuple(reports if isinstance(reports, list) else [reports]),
            folder=folder,
            email=tuple(mailboxes),
        )
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'job'}: {e['msg']}" for e in exc.errors())
        raise HubError(f"the job is not valid: {reasons}") from None
    job = define_job(session, user, spec)
    return f"Scheduled job {job.name} defined."


def connectors(session: Session, account: Account) -> list[dict[str, str]]:
    """Every pull connector: whose, where it reads (no query string), its last run and result,
    consecutive failures and next run, for the secretariat's page."""
    from hub.connector_status import connector_overview

    require_secretariat(account)
    stamp = "%Y-%m-%d %H:%M"
    return [
        {
            "organisation": row.org,
            "connector": row.name,
            "kind": row.kind,
            "reads": row.target,
            "every": f"{row.interval_minutes} min",
            "enabled": "yes" if row.enabled else "no",
            "last run (UTC)": row.last_run_at.strftime(stamp) if row.last_run_at else "",
            "result": (row.last_result or "").replace("_", " "),
            "failures in a row": str(row.consecutive_failures),
            "next run (UTC)": row.next_run_at.strftime(stamp) if row.next_run_at and row.enabled else "",
        }
        for row in connector_overview(session)
    ]
