"""The secretariat's approval of submissions, and period locks.

A stored submission is ``validated``; a secretariat user (role secretariat or admin) approves
it or rejects it with a reason, one by one or in bulk for a period. Only approved data enters
a release (:func:`approved_submissions`). Every decision is kept on the submission (who, when,
why) and in the audit trail. A locked period accepts no new first version: later changes come
only as restatements (a new version with a reason), which the secretariat approves in turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, exists, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from hub import audit
from hub.errors import HubError, NotFoundError
from hub.models import Observation, Organisation, Period, PeriodLock, Submission, User
from hub.periods import PeriodRef, parse_period

REVIEWER_ROLES = ("secretariat", "admin")
MAX_REASON = 500


class ApprovalError(HubError):
    """An approval, rejection or lock was refused; nothing was changed."""


class PeriodLocked(HubError):
    """A submission would add first figures to a locked period: nothing was stored."""


# --- who may decide ------------------------------------------------------------------------


def require_reviewer(user: User) -> User:
    """``user`` if it may approve, reject, lock and publish: active, secretariat or admin."""
    if not user.is_active:
        raise ApprovalError(f"account {user.username} is deactivated")
    if user.role not in REVIEWER_ROLES:
        raise ApprovalError(
            f"account {user.username} has role {user.role}: only the secretariat (roles "
            f"{', '.join(REVIEWER_ROLES)}) approves, rejects, locks and publishes"
        )
    return user


def acting_user(session: Session, username: str) -> User:
    """The account a command acts as (``--as``): it must exist, be active and be secretariat."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFoundError(f"no account with username {username!r}")
    return require_reviewer(user)


def _reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ApprovalError(f"{what} needs a reason")
    if len(text) > MAX_REASON:
        raise ApprovalError(f"a reason has at most {MAX_REASON} characters")
    return text


# --- which versions count -------------------------------------------------------------------


def approved_submissions() -> SelectOfScalar[int | None]:
    """Query of the ids of the newest APPROVED version of every (organisation, scope).

    What a release uses: a newer version still pending (validated) or rejected does not
    remove the approved figures it would replace; they stay until a newer version is approved.
    Use it as a subquery (``col(...).in_(approved_submissions())``).
    """
    grouped = (
        select(
            col(Submission.organisation_id),
            col(Submission.scope),
            func.max(Submission.version).label("version"),
        )
        .where(Submission.status == "approved")
        .group_by(col(Submission.organisation_id), col(Submission.scope))
        .subquery()
    )
    return select(col(Submission.id)).join(
        grouped,
        and_(
            col(Submission.organisation_id) == grouped.c.organisation_id,
            col(Submission.scope) == grouped.c.scope,
            col(Submission.version) == grouped.c.version,
        ),
    )


def approved_submission_ids(session: Session) -> list[int]:
    """The ids of :func:`approved_submissions` (small sets, tests)."""
    return sorted(i for i in session.execute(approved_submissions()).scalars() if i is not None)


def _no_newer_live_version() -> Any:
    """SQL condition: no newer version of the same scope that is not rejected.

    Approving a version that a pending or approved newer one supersedes would put old figures
    back; only the newest live version of a scope can be approved.
    """
    newer = aliased(Submission)
    return ~exists().where(
        col(newer.organisation_id) == col(Submission.organisation_id),
        col(newer.scope) == col(Submission.scope),
        col(newer.version) > col(Submission.version),
        col(newer.status) != "rejected",
    )


def _within(period: PeriodRef) -> Any:
    """SQL condition on ``Period``: the period lies inside ``period`` (or is it)."""
    return and_(col(Period.start_date) >= period.start, col(Period.end_date) <= period.end)


def pending_submissions(
    session: Session,
    period: str,
    *,
    organisation: str | None = None,
    stakeholder_type: str | None = None,
) -> list[int]:
    """Ids of the validated submissions awaiting a decision that hold figures for ``period``
    or a period inside it (the months and quarters of a year), newest live version only."""
    ref = parse_period(period)
    has_figures = exists().where(
        col(Observation.submission_id) == col(Submission.id),
        col(Observation.period_id) == col(Period.id),
        _within(ref),
    )
    query = (
        select(col(Submission.id))
        .join(Organisation, col(Organisation.id) == col(Submission.organisation_id))
        .where(Submission.status == "validated", has_figures, _no_newer_live_version())
    )
    if organisation is not None:
        if session.exec(select(Organisation.id).where(Organisation.code == organisation)).first() is None:
            raise NotFoundError(f"no organisation with code {organisation!r}")
        query = query.where(Organisation.code == organisation)
    if stakeholder_type is not None:
        query = query.where(Organisation.stakeholder_type == stakeholder_type)
    return sorted(i for i in session.exec(query.order_by(col(Submission.id))) if i is not None)


def live_pending(session: Session, *, channels: Sequence[str] | None = None) -> list[int]:
    """Ids of every validated submission that is the newest live version of its scope
    (optionally only those that came by ``channels``)."""
    query = select(col(Submission.id)).where(Submission.status == "validated", _no_newer_live_version())
    if channels is not None:
        query = query.where(col(Submission.channel).in_(list(channels)))
    return sorted(i for i in session.exec(query) if i is not None)


# --- decisions ------------------------------------------------------------------------------


_CHUNK = 5000  # ids per IN (...) list: SQLite caps the parameters of one statement


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _decidable(session: Session, submission_ids: Sequence[int], action: str) -> list[Submission]:
    """The submissions, all checked before any changes: every id must exist and be validated."""
    ids = list(dict.fromkeys(submission_ids))
    if not ids:
        raise ApprovalError(f"nothing to {action}: no submission given")
    found: dict[int | None, Submission] = {}
    for chunk in _chunks(ids):
        found.update((s.id, s) for s in session.exec(select(Submission).where(col(Submission.id).in_(chunk))))
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise NotFoundError(f"no submission with id {', '.join(map(str, unknown[:20]))}")
    problems = [
        f"submission {s.id} is already {s.status}"
        if s.status in ("approved", "rejected")
        else f"submission {s.id} is {s.status}, not validated"
        for s in (found[i] for i in ids)
        if s.status != "validated"
    ]
    if problems:
        raise ApprovalError(f"cannot {action}: " + "; ".join(problems[:20]))
    return [found[i] for i in ids]


def approve(
    session: Session, actor: User, submission_ids: Sequence[int], *, channel: str = "cli"
) -> list[int]:
    """Approve validated submissions, all or none; returns their ids.

    Refused for an unknown id, a submission not validated (already approved or rejected), and
    a version superseded by a newer one that is pending or approved (approve that one).
    """
    require_reviewer(actor)
    submissions = _decidable(session, submission_ids, "approve")
    ids = [s.id for s in submissions]
    live: set[int | None] = set()
    for chunk in _chunks([i for i in ids if i is not None]):
        query = select(col(Submission.id)).where(col(Submission.id).in_(chunk), _no_newer_live_version())
        live.update(session.exec(query))
    stale = [s for s in submissions if s.id not in live]
    if stale:
        raise ApprovalError(
            "cannot approve: "
            + "; ".join(
                f"submission {s.id} ({s.scope} version {s.version}) has a newer version" for s in stale
            )
        )
    now = datetime.now(UTC)
    for submission in submissions:
        _decide(session, actor, submission, "approved", None, now, channel)
    session.flush()
    return [i for i in ids if i is not None]


def reject(
    session: Session, actor: User, submission_ids: Sequence[int], reason: str | None, *, channel: str = "cli"
) -> list[int]:
    """Reject validated submissions with a reason, all or none; returns their ids.

    A rejected version never enters a release; the approved version before it (if any) stays.
    """
    require_reviewer(actor)
    text = _reason(reason, "a rejection")
    submissions = _decidable(session, submission_ids, "reject")
    now = datetime.now(UTC)
    for submission in submissions:
        _decide(session, actor, submission, "rejected", text, now, channel)
    session.flush()
    return [s.id for s in submissions if s.id is not None]


def _decide(
    session: Session,
    actor: User,
    submission: Submission,
    status: str,
    reason: str | None,
    now: datetime,
    channel: str,
) -> None:
    submission.status = status
    submission.reviewed_by_id = actor.id
    submission.reviewed_at = now
    submission.review_reason = reason
    session.add(submission)
    details: dict[str, Any] = {"scope": submission.scope, "version": submission.version}
    if reason is not None:
        details["reason"] = reason
    audit.record(
        session,
        "submission.approve" if status == "approved" else "submission.reject",
        actor_label=channel,
        actor_user_id=actor.id,
        organisation_id=submission.organisation_id,
        object_type="submission",
        object_id=submission.id,
        details=details,
    )


def approve_period(
    session: Session,
    actor: User,
    period: str,
    *,
    organisation: str | None = None,
    stakeholder_type: str | None = None,
    channel: str = "cli",
) -> list[int]:
    """Approve every pending submission with figures for ``period`` (see :func:`pending_submissions`)."""
    require_reviewer(actor)
    ids = pending_submissions(session, period, organisation=organisation, stakeholder_type=stakeholder_type)
    return approve(session, actor, ids, channel=channel) if ids else []


def reject_period(
    session: Session,
    actor: User,
    period: str,
    reason: str | None,
    *,
    organisation: str | None = None,
    stakeholder_type: str | None = None,
    channel: str = "cli",
) -> list[int]:
    """Reject every pending submission with figures for ``period``, with one reason."""
    require_reviewer(actor)
    _reason(reason, "a rejection")
    ids = pending_submissions(session, period, organisation=organisation, stakeholder_type=stakeholder_type)
    return reject(session, actor, ids, reason, channel=channel) if ids else []


# --- period locks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LockRow:
    period: str
    locked_at: datetime
    locked_by: str


def lock_period(
    session: Session, actor: User, period: str, *, allow_pending: bool = False, channel: str = "cli"
) -> PeriodLock:
    """Lock ``period`` (and with it every period inside it) against new first versions.

    Refused while submissions for it still await a decision, unless ``allow_pending``.
    """
    from hub.store import ensure_periods  # hub.store calls this module when it stores

    require_reviewer(actor)
    ref = parse_period(period)
    period_id = ensure_periods(session, [ref])[ref.code]
    if session.exec(select(PeriodLock).where(PeriodLock.period_id == period_id)).first() is not None:
        raise ApprovalError(f"period {ref.code} is already locked")
    pending = pending_submissions(session, ref.code)
    if pending and not allow_pending:
        raise ApprovalError(
            f"{len(pending)} submission(s) for {ref.code} still await approval or rejection "
            f"(e.g. {', '.join(map(str, pending[:5]))}); decide them first or allow pending ones"
        )
    assert actor.id is not None
    lock = PeriodLock(period_id=period_id, locked_by_id=actor.id)
    session.add(lock)
    audit.record(
        session,
        "period.lock",
        actor_label=channel,
        actor_user_id=actor.id,
        object_type="period",
        object_id=ref.code,
        details={"pending": len(pending)},
    )
    session.flush()
    return lock


def unlock_period(
    session: Session, actor: User, period: str, reason: str | None, *, channel: str = "cli"
) -> None:
    """Lift the lock on ``period``; the reason goes into the audit trail."""
    require_reviewer(actor)
    text = _reason(reason, "unlocking a period")
    ref = parse_period(period)
    lock = session.exec(
        select(PeriodLock)
        .join(Period, col(Period.id) == col(PeriodLock.period_id))
        .where(Period.code == ref.code)
    ).first()
    if lock is None:
        raise ApprovalError(f"period {ref.code} is not locked")
    session.delete(lock)
    audit.record(
        session,
        "period.unlock",
        actor_label=channel,
        actor_user_id=actor.id,
        object_type="period",
        object_id=ref.code,
        details={"reason": text},
    )
    session.flush()


def list_locks(session: Session) -> list[LockRow]:
    query = (
        select(Period.code, PeriodLock.locked_at, User.username)
        .join(Period, col(Period.id) == col(PeriodLock.period_id))
        .join(User, col(User.id) == col(PeriodLock.locked_by_id))
        .order_by(col(Period.start_date), col(Period.end_date))
    )
    return [LockRow(code, at, by) for code, at, by in session.exec(query)]


# built once: every stored first version asks (SQLAlchemy reuses the compiled statement)
_LOCKS = select(col(Period.code), col(Period.start_date), col(Period.end_date)).join(
    PeriodLock, col(PeriodLock.period_id) == col(Period.id)
)


def refuse_locked_periods(session: Session, periods: Iterable[PeriodRef]) -> None:
    """Raise :class:`PeriodLocked` if any of ``periods`` is, or lies inside, a locked period.

    Called by :func:`hub.store.store_submission` for a first version (a restatement has a
    reason and passes). A submission covering several periods is refused as a whole when
    one of them is locked. Locking a year locks its halves, quarters and months; locking a
    month leaves the year open (a yearly figure does not change the month's).
    """
    locks: list[tuple[str, date, date]] = [(code, start, end) for code, start, end in session.execute(_LOCKS)]
    if not locks:
        return
    hit = sorted(
        {
            (ref.code, code)
            for ref in set(periods)
            for code, start, end in locks
            if start <= ref.start and ref.end <= end
        }
    )
    if hit:
        shown = ", ".join(ref if ref == lock else f"{ref} (in {lock})" for ref, lock in hit[:5])
        raise PeriodLocked(
            f"period {shown} is locked after approval: only a restatement of figures already "
            "reported (with a reason) is accepted"
        )


# --- listing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionRow:
    """A submission as the secretariat lists it (never values)."""

    id: int
    organisation: str
    stakeholder_type: str
    scope: str
    version: int
    channel: str
    status: str
    received_at: datetime
    reviewed_at: datetime | None
    review_reason: str | None
    supersede_reason: str | None


def list_submissions(
    session: Session,
    *,
    status: str | None = None,
    period: str | None = None,
    organisation: str | None = None,
) -> list[SubmissionRow]:
    """Submissions by id, optionally by status, by period (figures in it) and organisation."""
    query = select(Submission, Organisation.code, Organisation.stakeholder_type).join(
        Organisation, col(Organisation.id) == col(Submission.organisation_id)
    )
    if status is not None:
        query = query.where(Submission.status == status)
    if organisation is not None:
        query = query.where(Organisation.code == organisation)
    if period is not None:
        query = query.where(
            exists().where(
                col(Observation.submission_id) == col(Submission.id),
                col(Observation.period_id) == col(Period.id),
                _within(parse_period(period)),
            )
        )
    rows = []
    for sub, code, kind in session.exec(query.order_by(col(Submission.id))):
        assert sub.id is not None
        rows.append(
            SubmissionRow(
                sub.id,
                code,
                kind,
                sub.scope,
                sub.version,
                sub.channel,
                sub.status,
                sub.received_at,
                sub.reviewed_at,
                sub.review_reason,
                sub.supersede_reason,
            )
        )
    return rows
