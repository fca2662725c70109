"""Pull connectors: the hub fetches an organisation's figures from an HTTP(S) feed or a drop folder.

Every body or file goes through :func:`ingest.pipeline.ingest_bytes` (channel ``pull``), like
any other channel. The rules that keep a pull safe:

- the secret of a feed lives in an environment variable named by the connector, never in the
  database; it is sent as the ``Authorization`` header to the configured origin only;
- ``https://`` only unless ``HUB_CONNECTOR_ALLOW_HTTP``; a redirect is followed only to the same
  scheme, host and port (at most three times), never elsewhere;
- timeouts, a bounded number of retries with exponential backoff (connection errors, timeouts,
  5xx, 429 with ``Retry-After``), never on other 4xx;
- a body larger than ``HUB_MAX_UPLOAD_BYTES`` is never read past the limit;
- conditional GET (ETag / Last-Modified), remembered only after an accepted or unchanged ingest,
  so a rejected feed is fetched again;
- run messages, logs and the audit trail name rules, counts and statuses, never a value, a
  secret or the feed's query string;
- one connector failing never stops the others: each runs in its own sessions and its own
  ``try``; an unexpected error is logged (type and stack, no message) and recorded as failed.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import re
import shutil
import ssl
import time
import traceback
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urljoin, urlsplit

import typer
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub import audit
from hub.catalogue import Catalogue
from hub.connector_status import ConnectorRow, connector_overview, display_target  # noqa: F401 - re-exported
from hub.db import session_scope
from hub.errors import HubError, NotFoundError
from hub.models import Connector, ConnectorRun, Organisation
from hub.organisations import get_by_code
from hub.settings import Settings

logger = logging.getLogger(__name__)

Result = Literal["accepted", "unchanged", "not_modified", "rejected", "failed", "empty"]

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ENV_NAME_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
MAX_INTERVAL_MINUTES = 31 * 24 * 60
MAX_REDIRECTS = 3
MAX_RETRY_AFTER_SECONDS = 300.0
MAX_FILES_PER_RUN = 100
SETTLE_SECONDS = 5.0  # a drop-folder file changed more recently may still be being written
FOLDER_SUFFIXES = (".csv", ".json", ".xlsx")
PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")
MESSAGE_LENGTH = 500
CHUNK = 64 * 1024
# content types a feed may answer with, and the file suffix the pipeline reads them as
CONTENT_TYPES = {
    "application/json": ".json",
    "text/json": ".json",
    "text/csv": ".csv",
    "application/csv": ".csv",
    "text/plain": ".csv",
    "application/octet-stream": "",
}


# --- configuration ---------------------------------------------------------------------------


def _check_url(url: str, *, allow_http: bool) -> None:
    """Raise HubError when ``url`` is not a feed address the hub may fetch."""
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        raise HubError("the feed URL must start with https:// (http:// only when HUB_CONNECTOR_ALLOW_HTTP)")
    if not parts.hostname:
        raise HubError("the feed URL has no host")
    if parts.username is not None or parts.password is not None:
        raise HubError(
            "put no credentials in the feed URL: name an environment variable with --credential-env"
        )
    if parts.fragment:
        raise HubError("the feed URL must not carry a #fragment")
    if len(url) > 500:
        raise HubError("the feed URL is longer than 500 characters")
    try:
        _ = parts.port
    except ValueError:
        raise HubError("the feed URL has an invalid port") from None


def add_connector(
    session: Session,
    org_code: str,
    name: str,
    *,
    settings: Settings,
    url: str | None = None,
    folder: Path | str | None = None,
    credential_env: str | None = None,
    interval_minutes: int = 60,
    actor: str = "cli",
) -> Connector:
    """Register a feed (``url``) or a drop folder (``folder``) for an organisation; due at once.

    Only the *name* of the environment variable holding the credential is stored. ``HUB_*``
    names are refused: they hold the hub's own secrets, which must never leave the hub.
    """
    organisation = get_by_code(session, org_code)
    if not NAME_PATTERN.fullmatch(name):
        raise HubError(
            "connector name: 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )
    if (url is None) == (folder is None):
        raise HubError("give exactly one of --url and --folder")
    if not 1 <= interval_minutes <= MAX_INTERVAL_MINUTES:
        raise HubError(f"the interval is 1 to {MAX_INTERVAL_MINUTES} minutes")
    if credential_env is not None:
        if folder is not None:
            raise HubError("a drop folder takes no credential")
        if not ENV_NAME_PATTERN.fullmatch(credential_env):
            raise HubError(
                "--credential-env takes the NAME of an environment variable (A-Z, 0-9, _), not the secret"
            )
        if credential_env.startswith("HUB_"):
            raise HubError("HUB_* variables hold the hub's own settings and secrets; use another name")
    target_folder: str | None = None
    if url is not None:
        _check_url(url, allow_http=settings.connector_allow_http)
    else:
        path = Path(str(folder)).expanduser().resolve()
        if not path.is_dir():
            raise HubError(f"{path} is not an existing folder")
        if len(str(path)) > 500:
            raise HubError("the folder path is longer than 500 characters")
        target_folder = str(path)
    existing = session.exec(
        select(Connector).where(Connector.organisation_id == organisation.id, Connector.name == name)
    ).first()
    if existing is not None:
        raise HubError(f"{organisation.code} already has a connector named {name}")
    connector = Connector(
        organisation_id=organisation.id,  # type: ignore[arg-type]
        name=name,
        kind="http" if url is not None else "folder",
        url=url,
        folder=target_folder,
        credential_env=credential_env,
        interval_minutes=interval_minutes,
    )
    session.add(connector)
    session.flush()
    audit.record(
        session,
        "connector.add",
        actor_label=actor,
        organisation_id=organisation.id,
        object_type="connector",
        object_id=connector.id,
        details={"name": name, "kind": connector.kind, "interval_minutes": interval_minutes},
    )
    return connector


def find_connector(session: Session, name: str, org_code: str | None = None) -> Connector:
    """The connector called ``name`` (of ``org_code`` when given); an error when none or several."""
    query = select(Connector).where(Connector.name == name)
    if org_code is not None:
        organisation = get_by_code(session, org_code)
        query = query.where(Connector.organisation_id == organisation.id)
    found = list(session.exec(query))
    if not found:
        raise NotFoundError(f"no connector named {name}")
    if len(found) > 1:
        raise HubError(f"several organisations have a connector named {name}: give --org")
    return found[0]


# --- fetching ----------------------------------------------------------------------------------


class FetchFailed(Exception):
    """The feed could not be fetched; the message is fixed text (no URL, no value, no secret)."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class _Retryable(Exception):
    def __init__(self, message: str, *, status: int | None = None, wait: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.wait = wait


@dataclass
class Fetched:
    """What a feed answered: a body (None when 304 Not Modified) and its validators."""

    status: int
    body: bytes | None
    suffix: str
    etag: str | None
    last_modified: str | None
    attempts: int


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let 3xx reach the caller, which decides whether a redirect stays on the same origin."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _retry_after(value: str | None) -> float | None:
    """Seconds asked by a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _read_limited(response: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    """The body, refused once it passes ``limit`` bytes or the deadline; never read further."""
    length = response.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise FetchFailed(f"the feed is larger than the limit of {limit} bytes (Content-Length)")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise _Retryable("the feed took longer than the timeout to send its body")
        chunk = response.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise FetchFailed(f"the feed is larger than the limit of {limit} bytes")
    return b"".join(chunks)


def _suffix(content_type: str) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    if media.startswith("application/") and media.endswith("+json"):
        return ".json"
    raise FetchFailed("the feed answered with a content type other than JSON or CSV", status=200)


def _attempt(
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    limit: int,
) -> Fetched:
    """One GET, following same-origin redirects; raises _Retryable or FetchFailed."""
    opener = _opener()
    origin = _origin(url)
    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310 - scheme checked
        try:
            response = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status in (301, 302, 303, 307, 308):
                location = exc.headers.get("Location")
                exc.close()
                if not location:
                    raise FetchFailed("the feed redirected without a Location", status=status) from None
                target = urljoin(url, location)
                if _origin(target) != origin:
                    raise FetchFailed(
                        "the feed redirected to another host, port or scheme; the hub follows "
                        "redirects only on the same origin: configure the final URL",
                        status=status,
                    ) from None
                url = target
                continue
            if status == 304:
                exc.close()
                return Fetched(304, None, "", None, None, 1)
            wait = _retry_after(exc.headers.get("Retry-After")) if status == 429 else None
            exc.close()
            if status == 429 or status >= 500:
                raise _Retryable(f"the feed answered HTTP {status}", status=status, wait=wait) from None
            raise FetchFailed(f"the feed answered HTTP {status}", status=status) from None
        except TimeoutError:
            raise _Retryable("the feed did not answer within the timeout") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _Retryable("the feed did not answer within the timeout") from None
            kind = type(reason).__name__ if isinstance(reason, BaseException) else "error"
            if isinstance(reason, ssl.SSLError):  # a bad certificate does not heal by retrying
                raise FetchFailed(f"the TLS connection to the feed failed ({kind})") from None
            raise _Retryable(f"could not connect to the feed ({kind})") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Retryable(f"the connection to the feed failed ({type(exc).__name__})") from None
        with response:
            status = response.status
            try:
                suffix = _suffix(response.headers.get("Content-Type", ""))
                body = _read_limited(response, limit, deadline)
            except TimeoutError:
                raise _Retryable("the feed stopped sending within the timeout") from None
            except (ConnectionError, http.client.HTTPException) as exc:
                raise _Retryable(f"the connection to the feed broke ({type(exc).__name__})") from None
            return Fetched(
                status,
                body,
                suffix,
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
                1,
            )
    raise FetchFailed(f"the feed redirected more than {MAX_REDIRECTS} times")


def fetch_feed(
    url: str,
    *,
    authorization: str | None,
    etag: str | None,
    last_modified: str | None,
    timeout: float,
    retries: int,
    limit: int,
    backoff_seconds: float = 1.0,
    max_wait_seconds: float = MAX_RETRY_AFTER_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Fetched:
    """GET ``url`` conditionally with retries and exponential backoff; raise FetchFailed."""
    headers = {"Accept": "application/json, text/csv;q=0.9", "User-Agent": "csea-hub-connector/1"}
    if authorization:
        headers["Authorization"] = authorization
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    attempts = 0
    while True:
        attempts += 1
        try:
            fetched = _attempt(url, headers, timeout=timeout, limit=limit)
        except FetchFailed as exc:
            exc.attempts = attempts
            raise
        except _Retryable as exc:
            if attempts > retries:
                raise FetchFailed(
                    f"{exc} (after {attempts} attempt(s))", status=exc.status, attempts=attempts
                ) from None
            wait = backoff_seconds * 2 ** (attempts - 1)
            if exc.wait is not None:
                wait = max(wait, exc.wait)
            sleep(min(wait, max_wait_seconds))
            continue
        fetched.attempts = attempts
        return fetched


# --- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """What a run needs of its connector, read in a short session before any network I/O."""

    id: int
    name: str
    kind: str
    url: str | None
    folder: str | None
    credential_env: str | None
    etag: str | None
    last_modified: str | None
    org_id: int
    org_code: str
    interval_minutes: int


@dataclass
class Outcome:
    """The result of one run before it is recorded."""

    result: Result
    message: str
    http_status: int | None = None
    attempts: int = 1
    submission_id: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    validators: bool = False  # remember etag / last_modified
    details: dict[str, object] = field(default_factory=dict)


def _rules_summary(rules: Counter[str]) -> str:
    return ", ".join(f"{rule} x{count}" for rule, count in sorted(rules.items()))


def _clip(message: str) -> str:
    return message if len(message) <= MESSAGE_LENGTH else message[: MESSAGE_LENGTH - 3] + "..."


def _log_failure(what: str, exc: BaseException) -> None:
    """Log an unexpected error by type and stack only: its message could quote a submitted value."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("%s: %s\n%s", what, type(exc).__name__, stack)


def _snapshot(engine: Engine, connector_id: int) -> _Snapshot:
    with session_scope(engine) as session:
        connector = session.get(Connector, connector_id)
        if connector is None:
            raise NotFoundError(f"no connector with id {connector_id}")
        organisation = session.get(Organisation, connector.organisation_id)
        assert organisation is not None  # foreign key
        return _Snapshot(
            id=connector_id,
            name=connector.name,
            kind=connector.kind,
            url=connector.url,
            folder=connector.folder,
            credential_env=connector.credential_env,
            etag=connector.etag,
            last_modified=connector.last_modified,
            org_id=organisation.id or 0,
            org_code=organisation.code,
            interval_minutes=connector.interval_minutes,
        )


def _ingest(
    engine: Engine, settings: Settings, catalogue: Catalogue, data: bytes, source_name: str, org_code: str
) -> tuple[Result, str, int | None, dict[str, object]]:
    """ingest_bytes in its own transaction: (result, message, submission id, report summary)."""
    from ingest.pipeline import ingest_bytes

    with session_scope(engine) as session:
        ingested = ingest_bytes(
            session, catalogue, data, source_name, org_code, dry_run=False, channel="pull", settings=settings
        )
    report = ingested.report
    details: dict[str, object] = {"format": report.file_format, "rows": report.rows}
    if not report.ok:
        rules = Counter(problem.rule for problem in report.errors)
        return "rejected", f"rejected: {len(report.errors)} error(s): {_rules_summary(rules)}", None, details
    warnings = len(report.problems) - len(report.errors)
    tail = f", {warnings} warning(s)" if warnings else ""
    if ingested.created:
        message = (
            f"accepted: submission {ingested.submission_id}, {ingested.observations} observation(s){tail}"
        )
        return "accepted", message, ingested.submission_id, details
    return (
        "unchanged",
        f"unchanged: same content as submission {ingested.submission_id}",
        ingested.submission_id,
        details,
    )


def _run_http(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    snap: _Snapshot,
    now: datetime,
    backoff_seconds: float,
    max_wait_seconds: float,
) -> Outcome:
    url = snap.url or ""
    try:
        _check_url(url, allow_http=settings.connector_allow_http)
    except HubError as exc:
        return Outcome("failed", f"configuration: {exc}", attempts=0)
    authorization: str | None = None
    if snap.credential_env:
        authorization = os.environ.get(snap.credential_env)
        if not authorization:
            return Outcome("failed", f"the environment variable {snap.credential_env} is not set", attempts=0)
    try:
        fetched = fetch_feed(
            url,
            authorization=authorization,
            etag=snap.etag,
            last_modified=snap.last_modified,
            timeout=settings.connector_timeout_seconds,
            retries=settings.connector_retries,
            limit=settings.max_upload_bytes,
            backoff_seconds=backoff_seconds,
            max_wait_seconds=max_wait_seconds,
        )
    except FetchFailed as exc:
        return Outcome("failed", str(exc), http_status=exc.status, attempts=exc.attempts)
    if fetched.body is None:
        return Outcome(
            "not_modified", "not modified since the last run", http_status=304, attempts=fetched.attempts
        )
    if not fetched.body.strip():
        return Outcome(
            "empty",
            "the feed answered with an empty body",
            http_status=fetched.status,
            attempts=fetched.attempts,
        )
    suffix = fetched.suffix or Path(urlsplit(url).path).suffix.lower()
    if suffix not in (".json", ".csv"):
        suffix = ".json" if fetched.body.lstrip()[:1] in (b"{", b"[") else ".csv"
    result, message, submission_id, details = _ingest(
        engine, settings, catalogue, fetched.body, f"{snap.name}{suffix}", snap.org_code
    )
    return Outcome(
        result,
        message,
        http_status=fetched.status,
        attempts=fetched.attempts,
        submission_id=submission_id,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        validators=result in ("accepted", "unchanged"),
        details=details,
    )


def _pending_files(folder: Path, settle_seconds: float) -> list[Path]:
    """Complete submission files of a drop folder, oldest first (partial and hidden ones skipped)."""
    wall = time.time()
    found: list[tuple[float, str, Path]] = []
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith((".", "~")) or name.lower().endswith(PARTIAL_SUFFIXES):
            continue
        if entry.suffix.lower() not in FOLDER_SUFFIXES or entry.is_symlink() or not entry.is_file():
            continue
        mtime = entry.stat().st_mtime
        if wall - mtime < settle_seconds:
            continue  # may still be being written
        found.append((mtime, name, entry))
    return [path for _mtime, _name, path in sorted(found)][:MAX_FILES_PER_RUN]


def _move(path: Path, target_dir: Path, report_json: str) -> None:
    """Move a handled file into ``target_dir`` with its validation report next to it."""
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = target_dir / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".report.json").write_text(report_json + "\n", encoding="utf-8")


def _too_large_report(name: str, limit: int) -> str:
    from ingest.report import ValidationReport

    report = ValidationReport(source_name=name)
    report.add(0, "", "file.too_large", f"files of at most {limit} bytes are accepted")
    return report.to_json()


def _run_folder(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    snap: _Snapshot,
    now: datetime,
    settle_seconds: float,
) -> Outcome:
    folder = Path(snap.folder or "")
    if not folder.is_dir():
        return Outcome("failed", "the drop folder does not exist or is not a folder", attempts=0)
    files = _pending_files(folder, settle_seconds)
    if not files:
        return Outcome("empty", "no complete file in the drop folder")
    results: Counter[str] = Counter()
    submission_id: int | None = None
    for path in files:
        source_name = f"{snap.name}{path.suffix.lower()}"  # the file's own name is the submitter's text
        if path.stat().st_size > settings.max_upload_bytes:
            results["rejected"] += 1
            with session_scope(engine) as session:
                audit.record(
                    session,
                    "submission.attempt",
                    actor_label=f"pull:{snap.org_code}"[:64],
                    organisation_id=snap.org_id,
                    outcome="rejected",
                    details={"channel": "pull", "result": "rejected", "problems": {"file.too_large": 1}},
                )
            _move(path, folder / "rejected", _too_large_report(source_name, settings.max_upload_bytes))
            continue
        from ingest.pipeline import ingest_bytes

        with session_scope(engine) as session:
            ingested = ingest_bytes(
                session,
                catalogue,
                path.read_bytes(),
                source_name,
                snap.org_code,
                dry_run=False,
                channel="pull",
                settings=settings,
            )
        ok = ingested.report.ok
        results["accepted" if ok and ingested.created else "unchanged" if ok else "rejected"] += 1
        if ok and ingested.created:
            submission_id = ingested.submission_id
        _move(path, folder / ("processed" if ok else "rejected"), ingested.report.to_json())
    summary = ", ".join(f"{count} {result}" for result, count in sorted(results.items()))
    result: Result = "rejected" if results["rejected"] else "accepted" if results["accepted"] else "unchanged"
    return Outcome(
        result,
        f"{len(files)} file(s): {summary}",
        submission_id=submission_id,
        details={"files": dict(results)},
    )


def _record(
    engine: Engine,
    snap: _Snapshot | None,
    connector_id: int,
    outcome: Outcome,
    started: datetime,
    now: datetime,
) -> ConnectorRun:
    """Store the run and the connector's state in one transaction."""
    message = _clip(outcome.message)
    with session_scope(engine) as session:
        connector = session.get(Connector, connector_id)
        if connector is None:
            raise NotFoundError(f"no connector with id {connector_id}")
        run = ConnectorRun(
            connector_id=connector_id,
            started_at=started,
            finished_at=datetime.now(UTC),
            result=outcome.result,
            http_status=outcome.http_status,
            attempts=outcome.attempts,
            submission_id=outcome.submission_id,
            message=message,
        )
        session.add(run)
        connector.last_run_at = now
        connector.last_result = outcome.result
        connector.last_message = message
        connector.next_run_at = now + timedelta(minutes=connector.interval_minutes)
        connector.consecutive_failures = (
            connector.consecutive_failures + 1 if outcome.result == "failed" else 0
        )
        if outcome.validators:
            connector.etag = (outcome.etag or "")[:200] or None
            connector.last_modified = (outcome.last_modified or "")[:64] or None
        session.add(connector)
        session.flush()
        audit.record(
            session,
            "connector.run",
            actor_label=f"pull:{snap.org_code}"[:64] if snap else "pull",
            organisation_id=connector.organisation_id,
            object_type="connector",
            object_id=connector_id,
            outcome=outcome.result,
            details={
                "result": outcome.result,
                "http_status": outcome.http_status,
                "attempts": outcome.attempts,
                "submission_id": outcome.submission_id,
                **outcome.details,
            },
        )
        return run


def run_connector(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    connector_id: int,
    now: datetime | None = None,
    *,
    backoff_seconds: float = 1.0,
    max_wait_seconds: float = MAX_RETRY_AFTER_SECONDS,
    settle_seconds: float = SETTLE_SECONDS,
) -> ConnectorRun:
    """Run one connector now and record the run; any error becomes a ``failed`` run, never raised.

    No database session is held during network I/O: the connector is read in one short session,
    each body or file is ingested in its own transaction, and the run is recorded in a third.
    """
    now = now or datetime.now(UTC)
    started = datetime.now(UTC)
    snap: _Snapshot | None = None
    try:
        snap = _snapshot(engine, connector_id)
        if snap.kind == "http":
            outcome = _run_http(engine, settings, catalogue, snap, now, backoff_seconds, max_wait_seconds)
        else:
            outcome = _run_folder(engine, settings, catalogue, snap, now, settle_seconds)
    except NotFoundError:
        raise
    except Exception as exc:
        _log_failure(f"connector {connector_id} failed", exc)
        outcome = Outcome("failed", f"internal error ({type(exc).__name__}); see the hub's log", attempts=0)
    run = _record(engine, snap, connector_id, outcome, started, now)
    log = logger.warning if outcome.result in ("failed", "rejected") else logger.info
    log("connector %s: %s", connector_id, run.result)
    return run


def _claim(engine: Engine, connector_id: int, interval_minutes: int, now: datetime) -> bool:
    """Move the connector's next run forward unless another process already did: True when ours."""
    with session_scope(engine) as session:
        claimed = session.execute(
            update(Connector)
            .where(
                col(Connector.id) == connector_id,
                or_(col(Connector.next_run_at).is_(None), col(Connector.next_run_at) <= now),
            )
            .values(next_run_at=now + timedelta(minutes=interval_minutes))
        )
        return bool(claimed.rowcount)  # type: ignore[attr-defined]


def due_connector_ids(session: Session, now: datetime) -> list[tuple[int, int]]:
    """(id, interval) of every enabled connector due at ``now`` (never run counts as due)."""
    query = (
        select(Connector.id, Connector.interval_minutes)
        .where(col(Connector.enabled))
        .where(or_(col(Connector.next_run_at).is_(None), col(Connector.next_run_at) <= now))
        .order_by(col(Connector.next_run_at).is_(None).desc(), col(Connector.next_run_at), col(Connector.id))
    )
    return [(int(cid or 0), int(interval)) for cid, interval in session.exec(query)]


def run_due_connectors(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    now: datetime | None = None,
    **options: float,
) -> list[ConnectorRun]:
    """Run every due connector, one after the other; one failing never stops the next."""
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        due = due_connector_ids(session, now)
    runs: list[ConnectorRun] = []
    for connector_id, interval in due:
        try:
            if not _claim(engine, connector_id, interval, now):
                continue  # another process runs it
            runs.append(run_connector(engine, settings, catalogue, connector_id, now, **options))
        except Exception as exc:  # e.g. the database went away while recording: go on with the next
            _log_failure(f"connector {connector_id} could not be run", exc)
    return runs


def run_all_connectors(
    engine: Engine, settings: Settings, catalogue: Catalogue, now: datetime | None = None, **options: float
) -> list[ConnectorRun]:
    """Run every enabled connector now, due or not."""
    with session_scope(engine) as session:
        ids = list(
            session.exec(select(Connector.id).where(col(Connector.enabled)).order_by(col(Connector.id)))
        )
    runs: list[ConnectorRun] = []
    for connector_id in ids:
        try:
            runs.append(run_connector(engine, settings, catalogue, int(connector_id or 0), now, **options))
        except Exception as exc:
            _log_failure(f"connector {connector_id} could not be run", exc)
    return runs


# --- command line ------------------------------------------------------------------------------

connector_app = typer.Typer(no_args_is_help=True, help="Pull connectors: HTTP(S) feeds and drop folders.")


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


@connector_app.command("add")
def connector_add(
    org: Annotated[str, typer.Argument(help="Code of the organisation whose figures the connector pulls.")],
    name: Annotated[str, typer.Argument(help="Connector name, unique per organisation.")],
    url: Annotated[str | None, typer.Option("--url", help="https:// address of a JSON or CSV feed.")] = None,
    folder: Annotated[Path | None, typer.Option("--folder", help="Drop folder watched for files.")] = None,
    credential_env: Annotated[
        str | None,
        typer.Option(
            "--credential-env", help="NAME of the environment variable holding the Authorization value."
        ),
    ] = None,
    every: Annotated[int, typer.Option("--every", help="Minutes between runs.")] = 60,
) -> None:
    """Register a pull connector; it is due at once."""
    from hub.cli import _ready_engine

    settings, engine = _ready_engine()
    with session_scope(engine) as session:
        connector = add_connector(
            session,
            org,
            name,
            settings=settings,
            url=url,
            folder=folder,
            credential_env=credential_env,
            interval_minutes=every,
        )
        typer.echo(
            f"added connector {org}/{connector.name} ({connector.kind}, every {every} min): {display_target(connector)}"
        )


@connector_app.command("list")
def connector_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's connectors.")] = None,
) -> None:
    """List connectors with their last run, result and next run, tab-separated."""
    from hub.cli import _ready_engine

    _, engine = _ready_engine()
    with session_scope(engine) as session:
        rows = connector_overview(session, org)
    typer.echo("org\tname\tkind\ttarget\tlast_run\tresult\tnext_run\tmessage")
    for row in rows:
        next_run = _when(row.next_run_at) if row.enabled else "disabled"
        if row.enabled and row.next_run_at is None:
            next_run = "due"
        typer.echo(
            f"{row.org}\t{row.name}\t{row.kind}\t{row.target}\t{_when(row.last_run_at)}\t"
            f"{row.last_result or '-'}\t{next_run}\t{row.last_message or '-'}"
        )


@connector_app.command("run")
def connector_run(
    name: Annotated[str | None, typer.Argument(help="Connector to run now.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Organisation of the named connector.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every enabled connector.")] = False,
    due: Annotated[bool, typer.Option("--due", help="Run the connectors that are due.")] = False,
) -> None:
    """Run connectors now and print the result of each: exit 1 when one failed or was rejected."""
    from hub.cli import _ensure_schema, _settings
    from hub.db import get_engine

    if sum([name is not None, all_, due]) != 1:
        raise typer.BadParameter("give a connector NAME, --all or --due")
    settings = _settings()
    engine = get_engine(settings)
    catalogue = _ensure_schema(engine, settings)
    if name is not None:
        with session_scope(engine) as session:
            connector_id = find_connector(session, name, org).id or 0
        runs = [run_connector(engine, settings, catalogue, connector_id)]
    elif all_:
        runs = run_all_connectors(engine, settings, catalogue)
    else:
        runs = run_due_connectors(engine, settings, catalogue)
    with session_scope(engine) as session:
        names = {
            c.id: f"{o.code}/{c.name}"
            for c, o in session.exec(
                select(Connector, Organisation).join(
                    Organisation, col(Organisation.id) == col(Connector.organisation_id)
                )
            )
        }
    if not runs:
        typer.echo("no connector ran")
    for run in runs:
        typer.echo(f"{names.get(run.connector_id, run.connector_id)}\t{run.result}\t{run.message or ''}")
    if any(run.result in ("failed", "rejected") for run in runs):
        raise typer.Exit(1)
