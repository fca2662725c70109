"""The upload page: an organisation's user signs in, uploads a file and reads its validation report.

Plain server-rendered HTML (Jinja, autoescaped; no script, so the hub's strict
Content-Security-Policy holds and the pages work without JavaScript). Every file goes through
:func:`ingest.pipeline.ingest_bytes`, the one entry of every channel, with the organisation
taken from the signed-in account, never from the form (rule 3).

Security, in order of a request: the upload route's body limit (``HUB_MAX_UPLOAD_BYTES``) is
set before anything reads the body; every POST carries the session's CSRF token (400
otherwise); pages after sign-in need a live account whose ``session_version`` still matches
(deactivation ends open sessions); failed sign-ins are limited per client address, kept in
memory only. The uploaded file's name is shown back escaped and never stored: the pipeline
gets a neutral name with the file's extension, so a name holding personal data never reaches
the database.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, TypeVar
from urllib.parse import urlsplit

import flask
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from werkzeug.exceptions import HTTPException

from hub import vocab
from hub.auth import Account, authenticate, end_sessions, signed_in_account, start_session
from hub.catalogue import load_catalogue
from hub.db import session_scope
from hub.models import Submission
from hub.settings import Settings
from ingest.pipeline import IngestResult, ingest_bytes
from ingest.report import Problem
from ingest.templates import build_template

ACCEPTED_SUFFIXES = (".csv", ".json", ".xlsx")
TEMPLATE_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FAILED_LOGIN_LIMIT = 10
FAILED_LOGIN_WINDOW_SECONDS = 15 * 60
MAX_SHOWN_PROBLEMS = 500
HISTORY_LIMIT = 200
SITE = "Global transparency hub against online child sexual exploitation"
# the pipeline's hints speak to the command line; the page has a form field instead
WEB_HINTS = {
    "scope.already_reported": (
        "this period was already reported with different figures; to restate it, fill in "
        "'Reason for restatement' with why the figures changed and upload again"
    ),
}

F = TypeVar("F", bound=Callable[..., Any])


class LoginThrottle:
    """Failed sign-ins per client address in a sliding window, in this process's memory only.

    The addresses are never stored or logged (an IP address is personal data). Behind a proxy
    every client shares the proxy's address: the limit then protects the accounts as a whole.
    """

    def __init__(self, limit: int = FAILED_LOGIN_LIMIT, window: float = FAILED_LOGIN_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.limit:
                if not times:
                    self._failures.pop(address, None)
                return 0
            return max(1, int(times[0] + self.window - now) + 1)

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address, time.monotonic()).append(time.monotonic())


@dataclass(frozen=True)
class ReportView:
    """What the report part of the page shows: a verdict, counts and the problems, never a value."""

    verdict: str  # accepted, unchanged, rejected, dry_run
    title: str
    detail: str
    file_name: str
    file_format: str
    rows: int
    observations: int
    errors: list[Problem]
    warnings: list[Problem]
    hidden: int  # problems beyond MAX_SHOWN_PROBLEMS


def human_size(size: int) -> str:
    """1048576 -> '1 MB' (binary units, as file managers show them)."""
    if size >= 2**20:
        return f"{size / 2**20:.3g} MB"
    return f"{size / 2**10:.3g} KB"


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def shown_file_name(name: str | None) -> str:
    """The uploaded file's base name, shortened, for the page only (Jinja escapes it)."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    return base if len(base) <= 120 else base[:117] + "..."


def report_view(
    result: IngestResult, *, dry_run: bool, file_name: str, scope: str, version: int
) -> ReportView:
    """The page's reading of an :class:`IngestResult`."""
    report = result.report
    problems = [
        Problem(p.row, p.column, p.rule, WEB_HINTS.get(p.rule, p.hint), p.severity) for p in report.sorted()
    ]
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    hidden = max(0, len(errors) - MAX_SHOWN_PROBLEMS) + max(0, len(warnings) - MAX_SHOWN_PROBLEMS)
    if not report.ok:
        verdict, title = "rejected", "Rejected: nothing was stored"
        detail = (
            f"The file has {len(errors)} problem(s). Fix every problem listed below and upload the "
            "whole file again; no part of it was kept."
        )
    elif dry_run:
        verdict, title = "dry_run", "Dry run OK: the file is valid"
        detail = f"{result.observations} observation(s) would be stored. Nothing was stored."
    elif result.created:
        verdict, title = "accepted", "Accepted"
        detail = f"Stored as version {version} of {scope}: {result.observations} observation(s)."
    else:
        verdict, title = "unchanged", "Unchanged: already stored"
        detail = f"This exact file is already stored as version {version} of {scope}. Nothing new was stored."
    return ReportView(
        verdict=verdict,
        title=title,
        detail=detail,
        file_name=file_name,
        file_format=report.file_format,
        rows=report.rows,
        observations=result.observations if report.ok else 0,
        errors=errors[:MAX_SHOWN_PROBLEMS],
        warnings=warnings[:MAX_SHOWN_PROBLEMS],
        hidden=hidden,
    )


def organisation_history(
    session: Session, organisation_id: int, limit: int = HISTORY_LIMIT
) -> list[Submission]:
    """One organisation's submissions, newest first: only ever the signed-in user's own (rule 3)."""
    query = (
        select(Submission)
        .where(Submission.organisation_id == organisation_id)
        .order_by(col(Submission.received_at).desc(), col(Submission.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def register(server: flask.Flask, engine: Engine, settings: Settings) -> None:
    """Mount sign-in and upload pages on ``server``."""
    bp = flask.Blueprint("upload", __name__, template_folder="web_templates")
    throttle = LoginThrottle()

    def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
        return flask.render_template(f"upload/{template}", site=SITE, **context), status

    def csrf_token() -> str:
        token = flask.session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            flask.session["csrf"] = token
        return token

    def current_account() -> Account | None:
        with session_scope(engine) as session:
            return signed_in_account(session, flask.session, settings, time.time())

    def signed_in(view: F) -> F:
        """Run ``view`` with the account in ``flask.g.account``; others go to the sign-in page."""

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None:
                request = flask.request
                here = request.full_path if request.query_string else request.path
                return flask.redirect(flask.url_for("upload.login", next=here))
            flask.g.account = account
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    @bp.context_processor
    def _context() -> dict[str, Any]:
        return {
            "csrf_token": csrf_token,
            "account": flask.g.get("account"),
            "max_upload": human_size(settings.max_upload_bytes),
        }

    @bp.before_request
    def _guard() -> None:
        request = flask.request
        if request.endpoint == "upload.submit_post" and isinstance(flask.session.get("uid"), int):
            # before anything reads the body: the upload's own limit instead of the app's 1 MB,
            # only for a signed-in session (anyone else cannot send more than the app allows)
            request.max_content_length = settings.max_upload_bytes
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            expected = flask.session.get("csrf")
            if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
                flask.abort(400)

    @bp.after_request
    def _no_store(response: flask.Response) -> flask.Response:
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.errorhandler(HTTPException)
    def _error(error: HTTPException) -> tuple[str, int]:
        code = error.code or 500
        messages = {
            400: (
                "The form could not be accepted",
                "The form was not sent from this site or has expired. Go back, reload the page and "
                "try again.",
            ),
            403: ("Not allowed", "Your account cannot do this."),
            404: ("Page not found", "There is no page at this address."),
            405: ("Method not allowed", "This address does not accept that kind of request."),
            413: (
                "File too large",
                f"The hub accepts files of at most {human_size(settings.max_upload_bytes)}. Split the "
                "file into several periods, or send events as a takedown-time distribution instead.",
            ),
        }
        title, message = messages.get(code, (f"Error {code}", "The request could not be completed."))
        return render("message.html", code, title=title, message=message)

    @bp.get("/login")
    def login() -> Any:
        """The sign-in form."""
        target = safe_next(flask.request.args.get("next"), flask.url_for("upload.submit"))
        if current_account() is not None:
            return flask.redirect(target)
        return render("login.html", next=target, error=None, username="")

    @bp.post("/login")
    def login_post() -> Any:
        """Check the password; on success a fresh session (new CSRF token) for the account."""
        form = flask.request.form
        target = safe_next(form.get("next"), flask.url_for("upload.submit"))
        address = flask.request.remote_addr or "unknown"
        wait = throttle.retry_after(address)
        if wait:
            minutes = max(1, round(wait / 60))
            message = f"Too many failed sign-ins from your network. Try again in about {minutes} minute(s)."
            page, status = render("login.html", 429, next=target, error=message, username="")
            response = flask.make_response(page, status)
            response.headers["Retry-After"] = str(wait)
            return response
        username = form.get("username", "").strip().lower()
        password = form.get("password", "")
        with session_scope(engine) as session:
            user = authenticate(session, username, password, channel="upload")
            if user is not None:
                start_session(flask.session, user, time.time())
        if user is None:
            throttle.failed(address)
            error = "The username or password is not right, or the account is not active."
            # the username is kept in the field (escaped) so a typo in the password is quick to fix
            return render("login.html", 401, next=target, error=error, username=username[:64])
        return flask.redirect(target)

    @bp.post("/logout")
    def logout() -> Any:
        """End the session, on the server too: a copy of the cookie no longer signs in."""
        uid = flask.session.get("uid")
        if isinstance(uid, int) and current_account() is not None:
            with session_scope(engine) as session:
                end_sessions(session, uid)
        flask.session.clear()
        return flask.redirect(flask.url_for("upload.login"))

    @bp.get("/submit")
    @signed_in
    def submit() -> Any:
        """The upload form, or why this account cannot upload."""
        account: Account = flask.g.account
        if account.organisation_id is None:
            return render("message.html", 403, title="Not allowed", message=NO_ORGANISATION)
        return render("submit.html", report=None, form_error=None, reason="", dry_run=False)

    @bp.post("/submit")
    @signed_in
    def submit_post() -> Any:
        """Validate the uploaded file for the account's organisation; store it unless dry run."""
        account: Account = flask.g.account
        if account.organisation_id is None or account.organisation_code is None:
            return render("message.html", 403, title="Not allowed", message=NO_ORGANISATION)
        if not account.can_upload:
            return render("message.html", 403, title="Not allowed", message=VIEWER_ONLY)
        form = flask.request.form
        dry_run = form.get("dry_run") == "1"
        reason = form.get("reason", "").strip()
        upload = flask.request.files.get("file")
        name = shown_file_name(upload.filename if upload else None)
        suffix = PurePosixPath(name).suffix.lower()
        if upload is None or not name:
            form_error = "Choose a file to upload."
        elif suffix not in ACCEPTED_SUFFIXES:
            form_error = "Choose a CSV, JSON or XLSX file (its name ends in .csv, .json or .xlsx)."
        else:
            form_error = None
        if form_error:
            return render(
                "submit.html", 400, report=None, form_error=form_error, reason=reason, dry_run=dry_run
            )
        assert upload is not None
        data = upload.read()
        catalogue = load_catalogue(settings.data_dir)
        with session_scope(engine) as session:
            result = ingest_bytes(
                session,
                catalogue,
                data,
                "upload" + suffix,  # never the user's own file name: it could name a person
                account.organisation_code,
                dry_run=dry_run,
                supersede_reason=reason or None,
                channel="upload",
                submitted_by_id=account.user_id,
                settings=settings,
            )
            stored = session.get(Submission, result.submission_id) if result.submission_id else None
            scope, version = (stored.scope, stored.version) if stored else ("", 0)
        view = report_view(result, dry_run=dry_run, file_name=name, scope=scope, version=version)
        status = 422 if view.verdict == "rejected" else 200
        # a rejected restatement keeps the reason typed; an accepted one clears the form
        kept_reason = reason if view.verdict == "rejected" else ""
        return render(
            "submit.html", status, report=view, form_error=None, reason=kept_reason, dry_run=dry_run
        )

    @bp.get("/submit/history")
    @signed_in
    def history() -> Any:
        """The organisation's own submissions, every version, newest first."""
        account: Account = flask.g.account
        if account.organisation_id is None:
            return render("message.html", 403, title="Not allowed", message=NO_ORGANISATION)
        with session_scope(engine) as session:
            rows = organisation_history(session, account.organisation_id)
        return render("history.html", rows=rows, limit=HISTORY_LIMIT)

    @bp.get("/submit/templates/<filename>")
    @signed_in
    def template(filename: str) -> Any:
        """A submission template for a stakeholder type: only the metrics that type reports."""
        account: Account = flask.g.account
        stakeholder_type, _, fmt = filename.rpartition(".")
        if stakeholder_type not in vocab.STAKEHOLDER_TYPES or fmt not in TEMPLATE_TYPES:
            flask.abort(404)
        reporter = account.organisation_code if account.stakeholder_type == stakeholder_type else ""
        try:
            content = build_template(load_catalogue(settings.data_dir), stakeholder_type, fmt, reporter or "")
        except ValueError:
            flask.abort(404)  # a format the template builder does not offer (yet)
        response = flask.make_response(content)
        response.headers["Content-Type"] = TEMPLATE_TYPES[fmt]
        response.headers["Content-Disposition"] = (
            f'attachment; filename="hub-template-{stakeholder_type}.{fmt}"'
        )
        return response

    server.register_blueprint(bp)


NO_ORGANISATION = (
    "Uploads and submission histories belong to organisation accounts. Secretariat accounts "
    "work with the command line for now."
)
VIEWER_ONLY = (
    "Your account can see your organisation's submissions but not upload. Ask your organisation's "
    "submitter, or the secretariat, for an upload account."
)
