"""Release builds asked for on the secretariat's page, run by the scheduler process.

A build reads every approved figure and runs disclosure control: a minute or more on a real
alliance, longer than a web request should take, and too heavy for a web worker. So the page
records a request (:func:`request_build`, audited) and the ``builds`` job of `hub scheduler`
runs it (:func:`run_next_build`), as ``hub release build`` would, with the requesting
secretariat member as the builder. The page shows each request's state: queued, running,
built (with the release's number) or failed (with a message that quotes no data).

- One open request at a time: a second one is refused while one is queued or running, by a
  check and, for two requests at the same instant, by the database (``open_slot``).
- Exactly once: a process claims the oldest queued request with an UPDATE from ``queued`` to
  ``running``; a second scheduler started by mistake finds nothing to claim.
- A request left ``running`` by a killed process for longer than :data:`STALE_AFTER` is
  marked failed, so the secretariat can ask again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub import audit
from hub.auth import Account
from hub.catalogue import Catalogue
from hub.db import session_scope
from hub.errors import HubError
from hub.models import BuildRequest, User
from hub.schedules import worker_name

log = logging.getLogger(__name__)

OPEN = ("queued", "running")
STALE_AFTER = timedelta(hours=2)
SHOWN = 10


class BuildRequestError(HubError):
    """A build cannot be asked for now (one is open, or the title is not valid)."""


@dataclass(frozen=True)
class BuildRequestRow:
    id: int
    title: str
    status: str
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None
    release_number: int | None
    error: str


def request_build(session: Session, account: Account, title: str, notes: str | None = None) -> BuildRequest:
    """Queue a release build for the scheduler (secretariat only; audited)."""
    if not account.is_secretariat:
        raise BuildRequestError("only the secretariat builds releases")
    title = " ".join(title.split())
    notes = (notes or "").strip() or None
    if not 1 <= len(title) <= 200:
        raise BuildRequestError("a release title has 1 to 200 characters")
    if notes is not None and len(notes) > 2000:
        raise BuildRequestError("release notes have at most 2,000 characters")
    open_request = session.exec(select(BuildRequest).where(col(BuildRequest.status).in_(OPEN))).first()
    if open_request is not None:
        raise BuildRequestError(
            f"build request {open_request.id} is still {open_request.status}; wait for it to finish"
        )
    request = BuildRequest(title=title, notes=notes, requested_by_id=account.user_id, open_slot=1)
    try:
        with session.begin_nested():  # another request queued since the check above: refused
            session.add(request)
            session.flush()
    except IntegrityError:
        raise BuildRequestError("another build request is open; wait for it to finish") from None
    audit.record(
        session,
        "release.build_requested",
        actor_label="web",
        actor_user_id=account.user_id,
        object_type="build_request",
        object_id=request.id,
    )
    return request


def recent_requests(session: Session, limit: int = SHOWN) -> list[BuildRequestRow]:
    """The latest build requests, newest first, with who asked."""
    rows = session.exec(
        select(BuildRequest, User.display_name)
        .join(User, col(User.id) == col(BuildRequest.requested_by_id))
        .order_by(col(BuildRequest.id).desc())
        .limit(limit)
    ).all()
    return [
        BuildRequestRow(
            r.id or 0, r.title, r.status, name, r.requested_at, r.finished_at, r.release_number, r.error or ""
        )
        for r, name in rows
    ]


def _fail_stale(engine: Engine, now: datetime) -> int:
    with session_scope(engine) as session:
        result = session.execute(
            update(BuildRequest)
            .where(col(BuildRequest.status) == "running", col(BuildRequest.started_at) < now - STALE_AFTER)
            .values(
                status="failed",
                finished_at=now,
                error="interrupted: the process running it stopped",
                open_slot=None,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _claim(engine: Engine, now: datetime) -> int | None:
    """The id of the oldest queued request, now running for this process; None if none (or
    another process claimed it first)."""
    with session_scope(engine) as session:
        oldest = session.exec(
            select(BuildRequest.id).where(col(BuildRequest.status) == "queued").order_by(col(BuildRequest.id))
        ).first()
        if oldest is None:
            return None
        result = session.execute(
            update(BuildRequest)
            .where(col(BuildRequest.id) == oldest, col(BuildRequest.status) == "queued")
            .values(status="running", started_at=now, worker=worker_name())
        )
        return oldest if getattr(result, "rowcount", 0) == 1 else None


def _finish(engine: Engine, request_id: int, *, release: int | None, error: str | None) -> None:
    with session_scope(engine) as session:
        request = session.get(BuildRequest, request_id)
        assert request is not None
        request.status = "built" if error is None else "failed"
        request.open_slot = None
        request.release_number = release
        request.error = error
        request.finished_at = datetime.now(UTC)
        session.add(request)


def run_next_build(engine: Engine, catalogue: Catalogue, data_dir: Path, now: datetime | None = None) -> str:
    """Run the oldest queued build request, if any (the scheduler's ``builds`` job)."""
    from hub.disclosure import DisclosureError
    from hub.publication import build_protected_release

    moment = now or datetime.now(UTC)
    stale = _fail_stale(engine, moment)
    request_id = _claim(engine, moment)
    if request_id is None:
        return "no build requested" + (f" ({stale} interrupted one(s) marked failed)" if stale else "")
    try:
        with session_scope(engine) as session:
            request = session.get(BuildRequest, request_id)
            assert request is not None
            builder = session.get(User, request.requested_by_id)
            assert builder is not None
            release = build_protected_release(
                session,
                catalogue=catalogue,
                data_dir=data_dir,
                title=request.title,
                built_by=builder,
                notes=request.notes,
                channel="web",
            )
            number = release.number
    except DisclosureError:  # its message names the cell and its range: the log only
        log.exception("build request %s: disclosure control could not protect the release", request_id)
        error = "disclosure control could not protect every cell; see the scheduler's log"
        _finish(engine, request_id, release=None, error=error)
        return f"build request {request_id} failed: {error}"
    except HubError as refused:  # nothing to release, a title: said as is
        _finish(engine, request_id, release=None, error=" ".join(str(refused).split())[:300])
        return f"build request {request_id} failed: {refused}"
    except Exception as exc:  # an unexpected failure: its type only (the message could quote data)
        log.exception("build request %s failed", request_id)
        _finish(engine, request_id, release=None, error=f"{type(exc).__name__}; see the scheduler's log")
        return f"build request {request_id} failed ({type(exc).__name__})"
    _finish(engine, request_id, release=number, error=None)
    return f"build request {request_id}: release {number} built"
